"""The skinny GEMM and its prologue kernels compiled for a GPU target without the GPU: what the K loop runs.

Triton compiles for a named target (here CUDA sm_90, the H100/H200) on any machine with Triton and
its bundled ptxas, no GPU needed. This compiles ``skinny_gemm_kernel`` and ``skinny_prologue_kernel``
(gpu/kernels/skinny_gemm.py: the norm prologue with and without the residual, the SiLU prologue)
for one SkinnyConfig and 16-row M tiles, as the engine launches them at batch 1-16, and reads the
PTX of the K loop (from the loop header Triton marks to its back branch): instructions per
iteration (per thread, and per KB of the W tile the iteration streams, times the warps) and by
kind (asynchronous copies to shared memory and their sizes, plain global loads, shared-memory
loads/stores and ldmatrix, barriers, warp shuffles, tensor-core MMAs, float math), the wait depth
of the copy pipeline, and the shared memory the kernel asks for.

It answers questions a device call should not be spent on: whether loads are 16-byte copies, whether
the loop is software-pipelined, and how much work a prologue adds per iteration. It measures no
time. Usage: python3 gpu/ptx_report.py [--config tsk_n32_k128_w4_s6_sk1] [--arch 90] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KINDS = {  # report key -> PTX opcode prefixes
    "cp.async (to shared)": ("cp.async.ca", "cp.async.cg"),
    "ld.global": ("ld.global",),
    "ld.shared": ("ld.shared",),
    "ldmatrix": ("ldmatrix",),
    "st.shared": ("st.shared",),
    "st.global": ("st.global",),
    "bar.sync": ("bar.sync", "barrier"),
    "shfl": ("shfl",),
    "mma": ("mma", "wgmma"),
    "float math": ("fma", "mul.f32", "mul.rn.f32", "add.f32", "add.rn.f32", "sub.f32", "ex2", "rcp", "div",
                   "mul.f16", "mul.rn.f16", "fma.rn.f32"),
    "cvt": ("cvt",),
}


def loop_body(ptx: str) -> list[str]:
    """The instructions of the first innermost loop Triton's LLVM marks ("Inner Loop Header"), up to
    the branch back to it. Empty if there is none."""
    lines = ptx.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\$L__BB\d+_\d+):.*Inner Loop Header", line)
        if not m:
            continue
        label = m.group(1)
        for j in range(len(lines) - 1, i, -1):
            if re.search(r"\bbra(\.uni)?\s+" + re.escape(label) + r";", lines[j]):
                return [s.strip() for s in lines[i + 1:j + 1] if s.strip() and not s.strip().startswith("//")
                        and not s.strip().startswith("$L__")]
        return []
    return []


def opcode(instr: str) -> str:
    s = re.sub(r"^@!?%p\d+\s+", "", instr)  # predicate guard
    return s.split()[0].rstrip(";") if s else ""


def summarize(ptx: str) -> dict:
    body = loop_body(ptx)
    ops = [opcode(s) for s in body]
    kinds = {k: sum(1 for o in ops if o.startswith(p)) for k, p in KINDS.items()}
    copy = re.compile(r"cp\.async\.\w+\.shared\.global\S*\s+\[[^\]]*\],\s*\[[^\]]*\],\s*(0x[0-9a-fA-F]+|\d+)")
    sizes = Counter(int(m.group(1), 0) for s in body if (m := copy.search(s)))
    waits = [int(x) for x in re.findall(r"cp\.async\.wait_group\s+(\d+)", ptx)]
    return {"loop_instructions": len(ops), "by_kind": kinds, "cp_async_bytes": dict(sorted(sizes.items())),
            "wait_group_depths": sorted(set(waits), reverse=True), "pipelined": any(w > 0 for w in waits)}


def _attrs(sig: dict[str, str], aligned: list[str]) -> dict:
    """Divisibility by 16 of the pointers and of the named integers, as the engine's tensors give."""
    names = list(sig)
    return {(names.index(n),): [["tt.divisibility", 16]] for n in aligned}


def compile_kernels(cfg_name: str, arch: int) -> dict[str, object]:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from gpu.kernels import skinny_gemm as sg

    cfg = sg.SkinnyConfig.from_name(cfg_name)
    target = GPUTarget("cuda", arch, 32)
    opts = {"num_warps": cfg.num_warps, "num_stages": cfg.num_stages}
    out = {}
    sig = {"x_ptr": "*fp16", "w_ptr": "*fp16", "y_ptr": "*fp16", "part_ptr": "*fp32", "count_ptr": "*i32",
           "M": "i32", "N": "i32", "K": "i32", "k_per_split": "i32", "stride_xm": "i32", "stride_xk": "constexpr",
           "stride_wn": "i32", "stride_wk": "constexpr", "stride_ym": "i32", "stride_yn": "constexpr",
           "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr", "SPLIT_K": "constexpr",
           "EVEN_K": "constexpr", "SWAP_AB": "constexpr"}
    const = {"stride_xk": 1, "stride_wk": 1, "stride_yn": 1, "BLOCK_M": 16, "BLOCK_N": cfg.block_n,
             "BLOCK_K": cfg.block_k, "SPLIT_K": cfg.split_k, "EVEN_K": True, "SWAP_AB": cfg.swap_ab}
    aligned = ["x_ptr", "w_ptr", "y_ptr", "part_ptr", "count_ptr", "N", "K", "k_per_split", "stride_xm",
               "stride_wn", "stride_ym"]
    out["gemm"] = triton.compile(ASTSource(fn=sg.skinny_gemm_kernel, signature=sig, constexprs=const,
                                           attrs=_attrs(sig, aligned)), target=target, options=opts)
    sig = {"x_ptr": "*fp16", "d_ptr": "*fp16", "g_ptr": "*fp16", "res_ptr": "*fp16", "h_ptr": "*fp16",
           "w_ptr": "*fp16", "y_ptr": "*fp16", "M": "i32", "N": "i32", "K": "i32", "eps": "fp32",
           "stride_xm": "i32", "stride_dm": "i32", "stride_resm": "i32", "stride_hm": "i32",
           "stride_wn": "i32", "stride_ym": "i32", "PRO": "constexpr", "HAS_D": "constexpr",
           "WRITE_H": "constexpr", "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr",
           "EVEN_K": "constexpr"}
    aligned = ["x_ptr", "d_ptr", "g_ptr", "res_ptr", "h_ptr", "w_ptr", "y_ptr", "N", "K", "stride_xm",
               "stride_dm", "stride_resm", "stride_hm", "stride_wn", "stride_ym"]
    for name, pro, has_d in [("norm+residual", sg.PRO_NORM, True), ("norm", sg.PRO_NORM, False),
                             ("silu", sg.PRO_SILU, False)]:
        const = {"PRO": pro, "HAS_D": has_d, "WRITE_H": False, "BLOCK_M": 16, "BLOCK_N": cfg.block_n,
                 "BLOCK_K": cfg.block_k, "EVEN_K": True}
        out[name] = triton.compile(ASTSource(fn=sg.skinny_prologue_kernel, signature=sig, constexprs=const,
                                             attrs=_attrs(sig, aligned)), target=target, options=opts)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=None, help="a SkinnyConfig name (default: the engine's)")
    ap.add_argument("--arch", type=int, default=90, help="CUDA compute capability x 10 (90: Hopper)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    # the kernels must be compiled, not interpreted: set before the first Triton import of this process
    os.environ["TRITON_INTERPRET"] = "0"
    try:
        import triton  # noqa: F401
    except ImportError:
        print("ptx_report: needs Triton (no GPU)", file=sys.stderr)
        return 2
    from gpu.kernels.skinny_gemm import SkinnyConfig
    if args.config is None:
        from gpu.engine.model import SKINNY_CONFIG
        args.config = SKINNY_CONFIG
    try:
        cfg = SkinnyConfig.from_name(args.config)
    except ValueError as e:
        ap.error(f"--config: {e}")
    kernels = compile_kernels(args.config, args.arch)
    w_kb = cfg.block_n * cfg.block_k * 2 / 1024  # the W tile one iteration streams
    report = {}
    for name, ck in kernels.items():
        r = summarize(ck.asm["ptx"])
        r["shared_bytes"] = getattr(getattr(ck, "metadata", None), "shared", None)
        # per thread, times the warps: the instructions the SM issues per KB of weights
        r["warp_instructions_per_w_kb"] = r["loop_instructions"] * cfg.num_warps / w_kb
        report[name] = r
    import triton

    from gpu.common.meta import collect_metadata
    meta = collect_metadata(config=args.config, arch=args.arch, triton=triton.__version__, block_m=16,
                            note="compiled for the target only; no GPU used, no time measured")
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps({"meta": meta, "kernels": report}, indent=1))
        tmp.replace(args.json)
    kinds = list(KINDS)
    print(f"K loop per iteration, {args.config}, sm_{args.arch}, BLOCK_M 16, Triton {meta['triton']}")
    print("| kernel | instructions | warp instructions per KB of W | " + " | ".join(kinds)
          + " | cp.async bytes | wait depth | shared bytes |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in kinds) + " | --- | --- | ---: |")
    for name, r in report.items():
        cells = " | ".join(str(r["by_kind"][k]) for k in kinds)
        sizes = ", ".join(f"{b} B x {n}" for b, n in r["cp_async_bytes"].items())
        print(f"| {name} | {r['loop_instructions']} | {r['warp_instructions_per_w_kb']:.0f} | {cells} | {sizes} | "
              f"{'/'.join(map(str, r['wait_group_depths']))} | {r['shared_bytes']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
