"""gpu/ptx_report.py: the K loop read from PTX (synthetic text: the loop between its header label and
the branch back, opcodes by kind, copy sizes, wait depths), and, where Triton is installed, the
real kernels compiled for sm_90 without a GPU: the plain skinny GEMM's loop is 16-byte copies
into a pipelined shared-memory ring, and every prologue loop issues several times its instructions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpu import ptx_report as pr

ROOT = Path(__file__).resolve().parents[2]

PTX = """\
.visible .entry k(
$L__BB0_2:
\tcp.async.wait_group 4;
$L__BB0_3: // =>This Inner Loop Header: Depth=1
\tcp.async.wait_group 4;
\tbar.sync \t0;
\tldmatrix.sync.aligned.m8n8.x4.shared.b16 {%r1, %r2, %r3, %r4}, [%r5];
\tmma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%r1}, {%r2}, {%r3}, {%r1};
\t@%p3 cp.async.cg.shared.global [ %r7 + 0 ], [ %rd1 + 0 ], 0x10, %r8;
\tcp.async.ca.shared.global [ %r9 + 0 ], [ %rd2 + 0 ], 4;
\tld.global.b16 {%rs1}, [ %rd3 + 0 ];
\tfma.rn.f32 %f1, %f2, %f3, %f4;
\t// a comment
\t@%p5 bra $L__BB0_3;
$L__BB0_4:
\tcp.async.wait_group 0;
\tret;
"""


def test_summarize_reads_the_loop_only():
    body = pr.loop_body(PTX)
    assert body[0] == "cp.async.wait_group 4;" and body[-1] == "@%p5 bra $L__BB0_3;"
    r = pr.summarize(PTX)
    k = r["by_kind"]
    assert k["mma"] == 1 and k["ldmatrix"] == 1 and k["bar.sync"] == 1 and k["ld.global"] == 1
    assert k["cp.async (to shared)"] == 2 and k["float math"] == 1
    assert r["cp_async_bytes"] == {4: 1, 16: 1}
    assert r["wait_group_depths"] == [4, 0] and r["pipelined"]
    assert r["loop_instructions"] == 9
    assert pr.opcode("@!%p12 st.global.b16 [x], y;") == "st.global.b16"


def test_no_loop_header_gives_an_empty_loop():
    assert pr.loop_body("ld.global.b32 %r1, [x];\nret;") == []
    assert pr.summarize("cp.async.wait_group 0;\nret;")["pipelined"] is False


def test_real_kernels_for_sm90(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    # its own process: the tests' conftest runs Triton interpreted, and the report compiles
    out = tmp_path / "ptx.json"
    r = subprocess.run([sys.executable, str(ROOT / "gpu/ptx_report.py"), "--config", "tsk_n32_k128_w4_s6_sk1",
                        "--json", str(out)], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(out.read_text())["kernels"]
    g = rep["gemm"]
    assert g["pipelined"] and set(g["cp_async_bytes"]) == {"16"} and g["by_kind"]["mma"] == 8
    for name in ("norm+residual", "norm", "silu"):
        assert rep[name]["pipelined"] and set(rep[name]["cp_async_bytes"]) == {"16"}, name
        assert rep[name]["loop_instructions"] > 2.5 * g["loop_instructions"], name
    assert "| gemm |" in r.stdout


def test_bad_config_is_a_usage_error(capsys, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    # main() sets TRITON_INTERPRET=0 for its own process: restored after this test
    monkeypatch.setenv("TRITON_INTERPRET", os.environ.get("TRITON_INTERPRET", "1"))
    with pytest.raises(SystemExit) as e:
        pr.main(["--config", "bogus"])
    assert e.value.code == 2 and "not a skinny GEMM config name" in capsys.readouterr().err


def _run(tmp_path, *args):
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, str(ROOT / "gpu/ptx_report.py"), *args, "--json", str(out)],
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return r, (json.loads(out.read_text()) if out.exists() else None)


def test_balanced_gemm_and_decode_attention_resources(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    # the balanced config at 32 rows for qkv's 12,288 rows over 132 programs: a 128-row tile,
    # pipelined 16-byte copies, registers read from the cubin, nothing spilled
    r, doc = _run(tmp_path, "--config", "tsk_n64_k128_w4_s4_sk1_ab_bal", "--rows", "32", "--n", "12288")
    assert r.returncode == 0, r.stderr[-2000:]
    assert doc["meta"]["block_m"] == 32 and doc["meta"]["block_n"] == 128
    g = doc["kernels"]["gemm"]
    assert g["pipelined"] and set(g["cp_async_bytes"]) == {"16"} and list(doc["kernels"]) == ["gemm"]
    assert g["registers"] > 0 and g["spill_bytes"] == 0
    # decode attention: one warp holds twice the programs of two at 32-token tiles
    r, doc = _run(tmp_path, "--attention")
    assert r.returncode == 0, r.stderr[-2000:]
    k = doc["kernels"]
    assert len(k) == 12 and "| tile 32, 1 warp |" in r.stdout
    fit = {name: r["programs_per_sm_by_registers"] for name, r in k.items()}
    assert fit["tile 32, 1 warp"] >= 2 * fit["tile 32, 2 warps"]


def test_usage_errors(capsys, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", os.environ.get("TRITON_INTERPRET", "1"))
    for args, msg in ((["--config", "tsk_n64_k128_w4_s4_sk1_ab_bal"], "--n"), (["--rows", "65"], "--rows"),
                      (["--programs", "0"], "--programs")):
        with pytest.raises(SystemExit) as e:
            pr.main(args)
        assert e.value.code == 2 and msg in capsys.readouterr().err


def test_global_atomics_counts_atom_and_red_on_global_memory():
    ptx = ("\t@%p24 atom.global.gpu.acq_rel.add.u32 %r1, [ %rd2 + 0 ], %r3;\n"
           "\tred.global.gpu.relaxed.add.f32 [ %rd4 + 0 ], %f1;\n"
           "\tatom.shared.add.u32 %r5, [%r6], 1;\n"
           "\tcp.async.cg.shared.global [ %r7 + 0 ], [ %rd8 + 0 ], 0x10, %r9;\n")
    assert pr.global_atomics(ptx) == 2


def test_epilogue_gemms_by_atomics_and_by_parts(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("triton")
    # the residual epilogue by atomics has one global atomic more than by stored parts (the split-K
    # counter's two in both); the readers' registers and shared memory do not change; nothing spills
    r, doc = _run(tmp_path, "--epilogues", "--rows", "32")
    assert r.returncode == 0, r.stderr[-2000:]
    k = doc["kernels"]
    assert len(k) == 6 and doc["meta"]["rows"] == 32
    resid = {form: v for name, v in k.items() if name.startswith("residual") for form in ("atomics", "parts")
             if name.endswith(form)}
    assert resid["atomics"]["global_atomics"] == resid["parts"]["global_atomics"] + 1
    for name, v in k.items():
        assert v["spill_bytes"] == 0 and v["registers"] > 0, name
    for what in ("row scale", "GLU"):
        pair = [v for name, v in k.items() if name.startswith(what)]
        assert pair[0]["registers"] == pair[1]["registers"] and pair[0]["shared_bytes"] == pair[1]["shared_bytes"]
    assert "| residual, " in r.stdout
