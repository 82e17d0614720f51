"""gpu/bench_decode_variants.py on the CPU: variant specs parse into settings of the engine's
modules (or are refused with the variant and setting named), settings are put back after a
variant, and the summary takes the median over rounds and marks a variant whose logits differ."""

from __future__ import annotations

import types

import pytest

from gpu import bench_decode_variants as bdv

MODS = {"attention": types.SimpleNamespace(DECODE_TILE=32, DECODE_L2_PREFETCH=False),
        "model": types.SimpleNamespace(SKINNY_WIDE_MAX_M=0)}


def test_a_variant_parses_into_settings():
    v = bdv.parse_variant("l2t16:attention.DECODE_L2_PREFETCH=True; attention.DECODE_TILE=16;"
                          "model.SKINNY_WIDE_MAX_M=32", MODS)
    assert v.name == "l2t16"
    assert v.settings == [("attention", "DECODE_L2_PREFETCH", True), ("attention", "DECODE_TILE", 16),
                          ("model", "SKINNY_WIDE_MAX_M", 32)]


@pytest.mark.parametrize("text, match", [
    ("x:attention.NO_SUCH=1", "has no NO_SUCH"),
    ("x:kernels.DECODE_TILE=1", "module 'kernels'"),
    ("x:attention.DECODE_TILE=sixteen", "not a Python literal"),
    ("x:DECODE_TILE=16", "not module.ATTR=VALUE"),
    ("a b:attention.DECODE_TILE=16", "must be letters"),
])
def test_bad_variants_are_refused_by_name(text, match):
    with pytest.raises(ValueError, match=match):
        bdv.parse_variant(text, MODS)


def test_settings_are_put_back_even_after_an_error():
    v = bdv.parse_variant("t:attention.DECODE_TILE=16;model.SKINNY_WIDE_MAX_M=32", MODS)
    with pytest.raises(RuntimeError), bdv.applied(v, MODS):
        assert MODS["attention"].DECODE_TILE == 16 and MODS["model"].SKINNY_WIDE_MAX_M == 32
        raise RuntimeError("capture failed")
    assert MODS["attention"].DECODE_TILE == 32 and MODS["model"].SKINNY_WIDE_MAX_M == 0


def test_the_summary_is_the_median_over_rounds_and_marks_differences():
    rows = [{"round": r, "variant": v, "batch": 32, "step_ms": ms, "rel_diff_vs_default": d, "ok": d <= 1e-2}
            for r, (v, ms, d) in enumerate([("default", 5.0, 0.0), ("default", 5.2, 0.0), ("default", 4.9, 0.0),
                                            ("t16", 4.8, 3e-3), ("t16", 4.7, 3e-2), ("t16", 4.9, 3e-3)])]
    rows.append({"round": 0, "variant": "t16", "batch": None, "step_ms": None, "error": "x", "ok": False})
    s = bdv.summarize(rows, ["default", "t16", "broken"], [32], roof_ms=3.2)
    assert s["default"][32]["step_ms"] == 5.0 and s["default"][32]["ok"]
    assert s["t16"][32]["step_ms"] == 4.8 and not s["t16"][32]["ok"] and s["t16"][32]["max_rel_diff"] == 3e-2
    assert s["broken"][32]["step_ms"] is None
    md = bdv.table(s, [32], 3.2, "# head")
    assert "| t16 | 4.800 (66.7 %) DIFFERS |" in md and "| broken | error |" in md


def test_rounds_rotate_the_order():
    assert bdv.rotated(["default", "a", "b"], 0) == ["default", "a", "b"]
    assert bdv.rotated(["default", "a", "b"], 4) == ["a", "b", "default"]
    assert bdv.rotated([], 3) == []


def test_a_variant_without_settings_is_the_default_under_another_name():
    assert bdv.parse_variant("again", MODS).settings == []
    with pytest.raises(ValueError, match="expected NAME"):
        bdv.parse_variant(":attention.DECODE_TILE=16", MODS)
