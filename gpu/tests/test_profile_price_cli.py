"""`loratwin profile price` on hand-made steps (the twin's binary; no torch): the parts add up to
the step, a merged step has no LoRA part, and bad rows name the file, line and column."""

from __future__ import annotations

import csv
import subprocess

from gpu.tests.test_conformance import ROOT, require_twin

SCEN = "traces/live/h200-v04-near-identical-rank16/scenario.yaml"
HEADER = ("iteration,live_s,mode,prefill_tokens,prefill_sequences,prefill_continuations,prefill_attention_pairs,"
          "prefill_max_keys,decode_sequences,decode_context_tokens,decode_max_context,sampling_sequences,segments")
ROWS = [
    "0,0.040,unmerged,652,1,0,212878,652,0,0,0,1,a0:652",
    "1,0.006,unmerged,0,0,0,0,0,3,1900,700,3,a0:2;a1:1",
    "2,0.006,merged,0,0,0,0,0,3,1900,700,3,",
]


def price(tmp_path, rows, *extra):
    steps = tmp_path / "steps.csv"
    steps.write_text("\n".join([HEADER, *rows]) + "\n")
    return subprocess.run([str(require_twin()), "profile", "price", SCEN, str(steps), *extra],
                          cwd=ROOT, capture_output=True, text=True)


def test_parts_add_up_and_columns_pass_through(tmp_path):
    out = tmp_path / "priced.csv"
    r = price(tmp_path, ROWS, "-o", str(out))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open()))
    assert [x["iteration"] for x in rows] == ["0", "1", "2"] and rows[0]["live_s"] == "0.040"
    for x in rows:
        f = {k: float(x[k + "_us"]) for k in ("predicted", "decode_floor", "decode_work", "decode_tail",
                                             "eager", "lora", "host")}
        total = f["decode_floor"] + max(f["decode_work"], f["decode_tail"]) + f["eager"] + f["lora"] + f["host"]
        assert abs(total - f["predicted"]) < 0.3  # each part rounded to 0.1 us
    assert float(rows[0]["eager_us"]) > 0 and float(rows[0]["decode_floor_us"]) == 0
    assert float(rows[1]["decode_floor_us"]) > 0 and float(rows[1]["eager_us"]) == 0
    assert float(rows[1]["lora_us"]) > 0 and float(rows[2]["lora_us"]) == 0  # merged: no LoRA
    # same batch apart from LoRA: the merged step is cheaper by exactly the LoRA part
    assert abs(float(rows[1]["predicted_us"]) - float(rows[2]["predicted_us"]) - float(rows[1]["lora_us"])) < 0.3


def test_unknown_adapter_names_line_and_column(tmp_path):
    r = price(tmp_path, [ROWS[0], ROWS[1].replace("a1:1", "zz:1")])
    assert r.returncode != 0
    assert "steps.csv:3: field 'segments'" in r.stderr and "zz" in r.stderr


def test_bad_number_and_missing_column(tmp_path):
    r = price(tmp_path, [ROWS[0].replace(",652,1,", ",-5,1,")])
    assert r.returncode != 0 and "steps.csv:2: field 'prefill_tokens'" in r.stderr
    steps = tmp_path / "steps.csv"
    steps.write_text(HEADER.replace(",segments", "") + "\n" + ROWS[0].rsplit(",", 1)[0] + "\n")
    r = subprocess.run([str(require_twin()), "profile", "price", SCEN, str(steps)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "segments" in r.stderr


def test_max_keys_raise_the_eager_part_and_are_required_by_the_profile(tmp_path):
    """The 3222a4e profile's attention fit has `prefill_max_keys` (docs/step-cost.md): the same
    chunk after 2048 cached tokens costs more than the fit's pairs alone would say, and a steps
    file without the column is refused where a row has prefill tokens."""
    longer = ROWS[0].replace(",212878,652,", ",212878,2700,")
    out = tmp_path / "priced.csv"
    assert price(tmp_path, [ROWS[0], longer], "-o", str(out)).returncode == 0
    a, b = (float(x["eager_us"]) for x in csv.DictReader(out.open()))
    assert b > a + 1000  # about 1.95 us per key on that profile: 2048 more keys
    steps = tmp_path / "steps.csv"
    cut = [",".join(f for i, f in enumerate(line.split(",")) if i != 7) for line in (HEADER, ROWS[1], ROWS[0])]
    steps.write_text("\n".join(cut) + "\n")
    r = subprocess.run([str(require_twin()), "profile", "price", SCEN, str(steps)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "steps.csv:3: field 'prefill_max_keys'" in r.stderr  # the decode row passes
    r = price(tmp_path, [ROWS[0].replace(",212878,652,", ",212878,-1,")])
    assert r.returncode != 0 and "steps.csv:2: field 'prefill_max_keys'" in r.stderr


def test_a_bad_row_leaves_no_output(tmp_path):
    out = tmp_path / "priced.csv"
    r = price(tmp_path, [ROWS[0], ROWS[1], ROWS[2].replace("merged", "halfway")], "-o", str(out))
    assert r.returncode != 0 and "steps.csv:4: field 'mode'" in r.stderr
    assert not out.exists() and not list(tmp_path.glob("priced.csv*"))
