"""scripts/live_batches.py: committed live runs reconstructed end to end, a tampered run caught, and
the StepBatch definitions on a hand-made batch (CPU, no torch)."""

from __future__ import annotations

import csv
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("live_batches", ROOT / "scripts/live_batches.py")
live_batches = importlib.util.module_from_spec(_spec)
sys.modules["live_batches"] = live_batches  # its dataclasses look their module up there
_spec.loader.exec_module(live_batches)

from gpu.engine.scheduler import ScheduledSeq, StepPlan  # noqa: E402

FCFS_RUN = ROOT / "traces/live/h200-v01-low-uniform-mixed"
DLORA_RUN = ROOT / "traces/live/d04-cold-adapter-share90-nocredit"
RUN_FILES = ("scenario.yaml", "trace.csv", "trace.catalogue.csv", "run.json", "iterations.csv", "requests.csv")


def _copy_run(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in RUN_FILES:
        shutil.copy(src / name, dst / name)
    return dst


def _live_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "iterations.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_fcfs_run_reconstructs_exactly(tmp_path: Path) -> None:
    out = tmp_path / "steps.csv"
    assert live_batches.main([str(FCFS_RUN), "--out", str(out)]) == 0
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == live_batches.COLUMNS
        rows = list(reader)
    live = _live_rows(FCFS_RUN)
    assert len(rows) == len(live) == 8947
    for got, want in zip(rows, live, strict=True):
        assert got["iteration"] == want["iteration"]
        assert got["start_s"] == want["start_s"] and got["live_s"] == want["duration_s"]
        assert got["mode"] == want["mode"] == "unmerged"
        assert int(got["prefill_tokens"]) == int(want["prefill_tokens"])
        assert int(got["decode_sequences"]) == int(want["decode_seqs"])
        assert int(got["prefill_sequences"]) + int(got["decode_sequences"]) == int(want["num_seqs"])
        segs = [s for s in got["segments"].split(";") if s]
        assert len(segs) == int(want["distinct_adapters"])
        # every request of this trace has an adapter: the segments hold every token of the batch
        assert sum(int(s.split(":")[1]) for s in segs) == int(got["prefill_tokens"]) + int(got["decode_sequences"])
    # The first iteration: one prompt of 695 tokens of a3, from scratch; the next, its first decode.
    assert rows[0]["segments"] == "a3:695" and rows[0]["prefill_attention_pairs"] == str(695 * 696 // 2)
    assert rows[0]["prefill_max_keys"] == "695" and rows[1]["prefill_max_keys"] == "0"
    assert rows[1]["decode_context_tokens"] == "696" and rows[1]["sampling_sequences"] == "1"


def test_fcfs_run_counts() -> None:
    rec = live_batches.reconstruct(live_batches.read_run(FCFS_RUN))
    assert len(rec.batches) == 8947  # the 5d28821 recording (264 requests, 66 s)
    assert rec.idle_passes == 5  # passes with no batch that ordered loads (run.json loads in gaps)
    # one arrival the engine read one pass after its time, as in h200-v06 (below)
    assert rec.deferred_arrivals == 1
    assert not rec.scheduler.has_work()


def test_arrivals_read_one_pass_late() -> None:
    """h200-v06 (3222a4e, the Azure conversation slice): one request arrived a few microseconds
    before a pass started that had not read it yet; the reconstruction defers it one pass, as the
    engine did (h200-v05 at 32bd308 had four)."""
    rec = live_batches.reconstruct(live_batches.read_run(ROOT / "traces/live/h200-v06-azure-conv-zipf"))
    assert len(rec.batches) == 5407
    assert rec.deferred_arrivals == 1
    assert not rec.scheduler.has_work()


def test_dlora_run_reconstructs_exactly(tmp_path: Path) -> None:
    rec = live_batches.reconstruct(live_batches.read_run(DLORA_RUN))
    live = _live_rows(DLORA_RUN)
    assert len(rec.batches) == len(live)
    assert rec.switches == 2 and rec.undetermined == 0 and rec.final_differs == []
    merged = [b for b in rec.batches if b.mode == "merged"]
    assert merged and all(b.segments == () for b in merged)
    assert [b.mode for b in rec.batches] == [r["mode"] for r in live]


def test_tampered_decode_seqs_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _copy_run(FCFS_RUN, tmp_path / "h200-v01-low-uniform-mixed")
    rows = _live_rows(run)
    assert int(rows[120]["decode_seqs"]) >= 0
    rows[120]["decode_seqs"] = str(int(rows[120]["decode_seqs"]) + 1)
    with open(run / "iterations.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(live_batches.Mismatch) as e:
        live_batches.reconstruct(live_batches.read_run(run))
    assert (e.value.iteration, e.value.field) == (120, "decode_seqs")
    assert e.value.live == e.value.rebuilt + 1
    out = tmp_path / "steps.csv"
    assert live_batches.main([str(run), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "iteration 120: decode_seqs: live" in err
    assert not out.exists()


def test_trace_of_another_run_is_refused(tmp_path: Path) -> None:
    run = _copy_run(FCFS_RUN, tmp_path / "run")
    lines = (run / "trace.csv").read_text().splitlines()
    fields = lines[1].split(",")
    fields[3] = str(int(fields[3]) + 1)  # one more prompt token for the first request
    lines[1] = ",".join(fields)
    (run / "trace.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(live_batches.Refused, match="sha256|SHA-256"):
        live_batches.read_run(run)


def test_step_batch_definitions() -> None:
    """Replica.summarise's definitions on a hand-made batch."""
    seqs = [
        ScheduledSeq(1, "a", 0, start_pos=0, num_tokens=4, block_table=[], samples=False),  # first chunk
        ScheduledSeq(2, None, None, start_pos=8, num_tokens=3, block_table=[], samples=True),  # last chunk
        ScheduledSeq(3, "b", 1, start_pos=20, num_tokens=1, block_table=[], samples=True, decode=True),
        ScheduledSeq(4, "a", 0, start_pos=5, num_tokens=1, block_table=[], samples=True, decode=True),
    ]
    row = live_batches.LiveRow(0, 7, 1.5, 0.25, 7, 2, 4, 2, "unmerged", 0, 0)
    b = live_batches.step_batch(StepPlan(seqs=seqs, loads=[], preempted=[]), row)
    assert (b.prefill_tokens, b.prefill_sequences, b.prefill_continuations) == (7, 2, 1)
    assert b.prefill_attention_pairs == 4 * (0 + 5 / 2) + 3 * (8 + 4 / 2) == 40
    assert b.prefill_max_keys == max(0 + 4, 8 + 3) == 11  # the continuation's keys, not the decode rows'
    assert (b.decode_sequences, b.decode_context_tokens, b.decode_max_context) == (2, 21 + 6, 21)
    assert b.sampling_sequences == 3
    assert b.segments == (("a", 5), ("b", 1))
    assert b.csv_fields() == ["7", "1.500000000", "0.250000000", "unmerged", "7", "2", "1", "40", "11", "2", "27", "21",
                              "3", "a:5;b:1"]
    merged = live_batches.step_batch(StepPlan(seqs=seqs, loads=[], preempted=[]), row, "merged")
    assert merged.segments == () and merged.csv_fields()[-1] == ""
