"""scripts/closed_loop_extrapolation.py: the factors read from `loratwin profile check` output (only
the variant asked for, only graphs with a factor of their own), each rule's prediction, and the
errors over the graphs outside the range; and, with the twin built, its run on a profile."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import closed_loop_extrapolation as ce  # noqa: E402

CHECK = """\
profile x
closed_loop/none/steps.csv (decode-only steps of gpu/closed_loop.py: measured / priced by graph; the factor scales them)
  graph 1: 300 steps, factor 0.990; even / odd rows 0.99 / 0.99
  graphs without a factor: 0.990 below the smallest graph with one (the median of the factors), 1 otherwise
closed_loop/sgmv/steps.csv (decode-only steps of gpu/closed_loop.py: measured / priced by graph; the factor scales them)
  graph 1: 400 steps, factor 1.06; even / odd rows 1.06 / 1.06
  graph 2: 5 steps, no factor (under 20 steps: 1.02); even / odd rows - / -
  graph 8: 387 steps, factor 1.02; even / odd rows 1.02 / 1.02
  graph 16: 300 steps, factor 1.04; even / odd rows 1.04 / 1.04
  graph 32: 300 steps, factor 0.98; even / odd rows 0.98 / 0.98
  graph 64: 300 steps, factor 1.00; even / odd rows 1.0 / 1.0
  graphs without a factor: 1.02 below the smallest graph with one (the median of the factors), 1 otherwise
step_decode_varied: something else
  graph 3: 10 steps, factor 9.9
"""


def test_parse_factors_reads_one_variant_and_only_measured_graphs():
    f = ce.parse_factors(CHECK, "sgmv")
    assert f == {1: 1.06, 8: 1.02, 16: 1.04, 32: 0.98, 64: 1.0}
    assert ce.parse_factors(CHECK, "none") == {1: 0.99}
    assert ce.parse_factors(CHECK, "dop") == {}


def test_rules_and_errors():
    inside = {8: 1.02, 16: 1.04, 32: 0.98}
    assert ce.predict("one", inside, 1) == 1.0
    assert ce.predict("nearest", inside, 1) == 1.02 and ce.predict("nearest", inside, 64) == 0.98
    assert ce.predict("median", inside, 1) == 1.02
    assert ce.predict("mean", inside, 64) == pytest.approx((1.02 + 1.04 + 0.98) / 3)
    assert ce.predict("median below, one above", inside, 4) == 1.02
    assert ce.predict("median below, one above", inside, 64) == 1.0
    res = ce.evaluate({"p": ce.parse_factors(CHECK, "sgmv")}, 8, 32)
    assert res["one"]["below"] == [pytest.approx(0.06)] and res["one"]["above"] == [pytest.approx(0.0)]
    assert res["nearest"]["below"] == [pytest.approx(0.04)] and res["nearest"]["above"] == [pytest.approx(0.02)]
    with pytest.raises(ValueError, match="no closed-loop factor"):
        ce.evaluate({"p": {1: 1.0, 64: 1.0}}, 8, 32)
    with pytest.raises(ValueError, match="unknown rule"):
        ce.predict("max", inside, 1)


TWIN = Path(os.environ.get("LORATWIN_BIN", ROOT / ".build/release/loratwin"))
PROFILE = ROOT / "profiles/h200-llama2-7b-30a9ee2"


@pytest.mark.skipif(not TWIN.exists() or not PROFILE.is_dir(), reason="needs the built twin and the 30a9ee2 profile")
def test_runs_on_a_profile_whose_loop_reached_every_graph(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts/closed_loop_extrapolation.py"), str(PROFILE),
                          "--twin", str(TWIN)], capture_output=True, text=True, check=True).stdout
    assert "| median below, one above |" in out and "| one |" in out
    assert "h200-llama2-7b-30a9ee2: 1: 1.053" in out
    # a profile whose loop covered only 8-32 is left out, and alone it is an error
    short = tmp_path / "short"
    shutil.copytree(ROOT / "profiles/h200-llama2-7b-e82f051", short)
    r = subprocess.run([sys.executable, str(ROOT / "scripts/closed_loop_extrapolation.py"), str(short),
                        "--twin", str(TWIN)], capture_output=True, text=True)
    assert r.returncode == 1 and "no graph outside 8-32" in r.stderr


def test_bad_inside_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        ce.main(["profiles/x", "--inside", "8"])
    assert e.value.code == 2 and "--inside must be LO,HI" in capsys.readouterr().err
