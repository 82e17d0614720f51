"""scripts/install_lease.py on a copy of the repository's pieces: a lease's profile, closed loop and
runs installed as the docs describe, and refusals that write nothing."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import install_lease as il  # noqa: E402

PROFILE = "h200-llama2-7b-a70f021"
RUN = "d04-cold-adapter-share90"
RECORDED = ROOT / "traces/repeats/d04-cold-adapter-share90-repeat5"  # a real recording of RUN


def _repo(tmp: Path) -> Path:
    root = tmp / "repo"
    (root / "profiles").mkdir(parents=True)
    shutil.copytree(ROOT / "profiles" / PROFILE, root / "profiles" / PROFILE)
    (root / "traces/live").mkdir(parents=True)
    shutil.copytree(ROOT / "traces/live" / RUN, root / "traces/live" / RUN)
    (root / "traces/repeats").mkdir(parents=True)
    (root / "traces/repeats/leases.csv").write_text("run,lease,note\n")
    shutil.copytree(ROOT / "traces/live" / RUN, root / "traces/repeats" / f"{RUN}-repeat")  # taken
    (root / "gpu").mkdir()
    shutil.copyfile(ROOT / "gpu/merge_profile.py", root / "gpu/merge_profile.py")
    return root


def _work(tmp: Path, closed_loop: bool = True) -> Path:
    work = tmp / "work"
    prof = work / "profile"
    prof.mkdir(parents=True)
    for f in (ROOT / "profiles" / PROFILE).glob("step_*.csv"):
        shutil.copyfile(f, prof / f.name)
    for name in ("lora_step", "lora_token", "adapter_load", "merge", "host_overhead"):
        shutil.copyfile(ROOT / "profiles" / PROFILE / f"{name}.csv", prof / f"{name}.csv")
    shutil.copyfile(ROOT / "gpu/results/profile/step-meta-h200-a70f021.json", prof / "meta.json")
    (work / "profile.log").write_text("profile written\n")
    if closed_loop:
        cl = work / "closed-loop-sgmv"
        cl.mkdir()
        (cl / "steps.csv").write_text("iteration\n")
        (cl / "catalogue.csv").write_text("adapter,rank,alpha,target_modules\n")
        (work / "closed-loop-sgmv.log").write_text("concurrency 1\n")
    run = work / "runs" / RUN
    run.mkdir(parents=True)
    for f in il.RUN_FILES:
        shutil.copyfile(RECORDED / f, run / f)
    (run / "replay.log").write_text("{}\n")
    return work


def test_a_lease_is_installed_as_the_docs_describe(tmp_path):
    root, work = _repo(tmp_path), _work(tmp_path)
    rc = il.main([str(work), "--commit", "abcdef1", "--lease", "abcdef1-1", "--note", "one call", "--root", str(root)])
    assert rc == 0
    prof = root / "profiles/h200-llama2-7b-abcdef1"
    meta = json.loads((prof / "meta.json").read_text())
    assert meta["step_profile"]["commit"] == "a70f021"  # what the step meta says it measured
    # the split rule is the one the profile ran, and says so (not the base profile's note)
    assert meta["decode_attention"]["target_programs"] == 512
    assert meta["decode_attention_source"].startswith("gpu/profile_steps.py at a70f021")
    assert "decode_gemm" not in meta["step_profile"]  # a70f021's step meta predates the record
    assert (prof / "closed_loop/sgmv/steps.csv").exists()
    assert (root / "gpu/results/profile/profile-h200-abcdef1.log").exists()
    assert (root / "gpu/results/profile/closed-loop-sgmv-h200-abcdef1.log").exists()
    rep = root / "traces/repeats" / f"{RUN}-repeat2"  # -repeat is taken
    scen = (rep / "scenario.yaml").read_text()
    assert f"name: {RUN}-repeat2" in scen and "profiles/h200-llama2-7b-abcdef1" in scen
    assert scen.startswith("# Repeat recording of traces/live/")
    assert (rep / "trace.csv").read_bytes() == (root / "traces/live" / RUN / "trace.csv").read_bytes()
    assert (root / f"gpu/results/runs-h200-abcdef1/{RUN}-repeat2.log").exists()
    rows = list(csv.reader((root / "traces/repeats/leases.csv").open()))
    assert rows[-1] == [f"{RUN}-repeat2", "abcdef1-1", "one call"]
    # the same lease again: the profile exists, nothing more is written
    before = sorted(str(p) for p in root.rglob("*"))
    assert il.main([str(work), "--commit", "abcdef1", "--lease", "abcdef1-1", "--root", str(root)]) == 2
    assert sorted(str(p) for p in root.rglob("*")) == before


def test_the_profile_keeps_the_gemm_routing_its_tables_ran_with(tmp_path):
    root, work = _repo(tmp_path), _work(tmp_path)
    step_meta = json.loads((work / "profile/meta.json").read_text())
    routing = {"skinny_max_m": 16, "wide_max_m": 32, "wide_narrow_config": None, "wide_pdl": False}
    (work / "profile/meta.json").write_text(json.dumps({**step_meta, "decode_gemm": routing}))
    assert il.main([str(work), "--commit", "abcdef1", "--lease", "abcdef1-1", "--root", str(root)]) == 0
    meta = json.loads((root / "profiles/h200-llama2-7b-abcdef1/meta.json").read_text())
    assert meta["step_profile"]["decode_gemm"] == routing


def test_refusals_write_nothing(tmp_path, capsys):
    root, work = _repo(tmp_path), _work(tmp_path, closed_loop=False)
    before = sorted(str(p) for p in root.rglob("*"))
    run_json = work / "runs" / RUN / "run.json"
    doc = json.loads(run_json.read_text())
    doc["trace"]["sha256"] = "0" * 64
    run_json.write_text(json.dumps(doc))
    assert il.main([str(work), "--commit", "abcdef1", "--lease", "x", "--root", str(root)]) == 2
    assert "trace sha256" in capsys.readouterr().err
    shutil.move(work / "runs" / RUN, work / "runs" / "no-such-scenario")
    assert il.main([str(work), "--commit", "abcdef1", "--lease", "x", "--root", str(root)]) == 2
    assert "no first recording" in capsys.readouterr().err
    assert sorted(str(p) for p in root.rglob("*")) == before
    import pytest

    with pytest.raises(SystemExit) as e:
        il.main([str(work), "--commit", "not-a-sha", "--lease", "x", "--root", str(root)])
    assert e.value.code == 2


def test_a_tagged_closed_loop_is_kept_under_results_not_in_the_profile(tmp_path):
    root, work = _repo(tmp_path), _work(tmp_path)
    end = work / "closed-loop-sgmv-end"
    end.mkdir()
    (end / "steps.csv").write_text("iteration\n2\n")
    (end / "catalogue.csv").write_text("adapter,rank,alpha,target_modules\n")
    (work / "closed-loop-sgmv-end.log").write_text("concurrency 1\n")
    assert il.main([str(work), "--commit", "abcdef1", "--lease", "abcdef1-1", "--root", str(root)]) == 0
    prof = root / "profiles/h200-llama2-7b-abcdef1/closed_loop"
    assert sorted(p.name for p in prof.iterdir()) == ["sgmv"]  # the correction stays the first loop's
    kept = root / "gpu/results/closed-loop-h200-abcdef1"
    assert (kept / "sgmv-end/steps.csv").read_text() == "iteration\n2\n"
    assert (kept / "closed-loop-sgmv-end.log").exists()


def test_a_tagged_closed_loop_alone_is_installed_and_never_twice(tmp_path):
    root = _repo(tmp_path)
    work = tmp_path / "later-call"
    end = work / "closed-loop-sgmv-end"
    end.mkdir(parents=True)
    (end / "steps.csv").write_text("iteration\n")
    (end / "catalogue.csv").write_text("adapter\n")
    assert il.main([str(work), "--commit", "abcdef1", "--lease", "abcdef1-1", "--root", str(root)]) == 0
    assert (root / "gpu/results/closed-loop-h200-abcdef1/sgmv-end/steps.csv").exists()
    assert il.main([str(work), "--commit", "abcdef1", "--lease", "abcdef1-1", "--root", str(root)]) == 2


def test_runs_of_a_lease_without_a_profile_are_priced_with_the_one_given(tmp_path, capsys):
    root = _repo(tmp_path)
    work = _work(tmp_path, closed_loop=False)
    shutil.rmtree(work / "profile")
    start = work / "closed-loop-sgmv-start1"  # the start's own loop, kept under gpu/results/
    start.mkdir()
    (start / "steps.csv").write_text("iteration\n")
    (start / "catalogue.csv").write_text("adapter\n")
    (root / "profiles/h200-llama2-7b").symlink_to(PROFILE)  # the default link: its target is written
    before = sorted(str(p) for p in root.rglob("*"))
    assert il.main([str(work), "--commit", "abcdef1", "--lease", "abcdef1-1", "--profile", "profiles/nothing",
                    "--root", str(root)]) == 2
    assert "not a profile under" in capsys.readouterr().err
    assert sorted(str(p) for p in root.rglob("*")) == before
    assert il.main([str(work), "--commit", "abcdef1", "--lease", "abcdef1-1", "--profile", "profiles/h200-llama2-7b",
                    "--root", str(root)]) == 0
    scen = (root / "traces/repeats" / f"{RUN}-repeat2/scenario.yaml").read_text()
    assert f"profiles/{PROFILE}," in scen and f"priced with {PROFILE}" in scen
    assert (root / "gpu/results/closed-loop-h200-abcdef1/sgmv-start1/steps.csv").exists()
    assert not (root / "profiles/h200-llama2-7b-abcdef1").exists()
    # a lease with a profile of its own refuses --profile
    assert il.main([str(_work(tmp_path / "w2")), "--commit", "abcdef2", "--lease", "abcdef2-1",
                    "--profile", f"profiles/{PROFILE}", "--root", str(root)]) == 2
    assert "has a profile of its own" in capsys.readouterr().err
