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
time. Each kernel's registers a thread, spilled bytes and shared memory come from the cubin
(Triton's bundled ``cuobjdump --dump-resource-usage``).

``--rows M`` compiles the GEMM for M-row batches (BLOCK_M follows M); with a balanced config
(suffix ``_bal``) ``--n N`` and ``--programs P`` give the tile ``balanced_tiling`` picks for a
weight of N rows over P programs. ``--attention`` reports decode attention's hand-pipelined kernel
instead (gpu/engine/attention.py, Llama-2-7B's 32 heads of 128, one split), at 16- and 32-token
tiles and 1, 2 and 4 warps, with and without the rotary embedding inside it, and how many programs
of that size an SM holds by registers (65,536 a Hopper SM). ``--epilogues`` reports the epilogue
GEMMs the engine runs at 17-32 rows without LoRA (gpu/engine/model.py WIDE_EPILOGUE*: qkv and
lm_head's row scale, gate_up's GLU, o_proj and down_proj's residual) at ``--rows`` rows, with the row
sums of squares added by atomics (EPILOGUE_SS_ATOMIC) and stored as parts: registers, spills, shared
memory and the global atomics in the PTX.

Usage: python3 gpu/ptx_report.py [--config tsk_n32_k128_w4_s6_sk1] [--rows 16] [--n N --programs 132]
    [--arch 90] [--json FILE] | --attention [--arch 90] [--json FILE] | --epilogues [--rows 32] [--arch 90]
    [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
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


def kernel_resources(ck) -> dict:
    """``resources(ck)`` and the kernel's shared memory (``shared_bytes``)."""
    r = resources(ck)
    r["shared_bytes"] = getattr(getattr(ck, "metadata", None), "shared", None)
    return r


def resources(ck) -> dict:
    """Registers a thread, spilled (local) bytes and shared memory of a compiled kernel, from its
    cubin by the cuobjdump Triton bundles; {} where that tool is missing."""
    import triton.backends.nvidia as nv

    tool = Path(nv.__file__).parent / "bin" / "cuobjdump"
    if not tool.exists():
        return {}
    with tempfile.TemporaryDirectory() as d:
        cubin = Path(d) / "k.cubin"
        cubin.write_bytes(ck.asm["cubin"])
        text = subprocess.run([str(tool), "--dump-resource-usage", str(cubin)], capture_output=True,
                              text=True).stdout
    m = re.search(r"REG:(\d+).*?STACK:(\d+).*?SHARED:(\d+).*?LOCAL:(\d+)", text)
    if not m:
        return {}
    regs, stack, _, local = (int(v) for v in m.groups())
    return {"registers": regs, "spill_bytes": stack + local}


def compile_kernels(cfg_name: str, arch: int, rows: int = 16, n: int | None = None,
                    programs: int = 132) -> dict[str, object]:
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from gpu.kernels import skinny_gemm as sg

    cfg = sg.SkinnyConfig.from_name(cfg_name)
    target = GPUTarget("cuda", arch, 32)
    opts = {"num_warps": cfg.num_warps, "num_stages": cfg.num_stages}
    block_n, block_k = cfg.balanced_tiling(n, programs) if cfg.balanced and n else (cfg.block_n, cfg.block_k)
    out = {}
    sig = {"x_ptr": "*fp16", "w_ptr": "*fp16", "y_ptr": "*fp16", "part_ptr": "*fp32", "count_ptr": "*i32",
           "M": "i32", "N": "i32", "K": "i32", "k_per_split": "i32", "programs": "i32", "stride_xm": "i32",
           "stride_xk": "constexpr", "stride_wn": "i32", "stride_wk": "constexpr", "stride_ym": "i32",
           "stride_yn": "constexpr", "BLOCK_M": "constexpr", "BLOCK_N": "constexpr", "BLOCK_K": "constexpr",
           "SPLIT_K": "constexpr", "EVEN_K": "constexpr", "SWAP_AB": "constexpr", "PDL": "constexpr",
           "PREFETCH_K": "constexpr", "BALANCED": "constexpr"}
    const = {"stride_xk": 1, "stride_wk": 1, "stride_yn": 1, "BLOCK_M": sg.block_m(rows), "BLOCK_N": block_n,
             "BLOCK_K": block_k, "SPLIT_K": cfg.split_k, "EVEN_K": True, "SWAP_AB": cfg.swap_ab,
             "PDL": False, "PREFETCH_K": 0, "BALANCED": cfg.balanced}
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
    if rows <= 16 and not cfg.balanced and not cfg.swap_ab:  # the prologues: no swap_ab, 16-row tiles
        for name, pro, has_d in [("norm+residual", sg.PRO_NORM, True), ("norm", sg.PRO_NORM, False),
                                 ("silu", sg.PRO_SILU, False)]:
            const = {"PRO": pro, "HAS_D": has_d, "WRITE_H": False, "BLOCK_M": 16, "BLOCK_N": cfg.block_n,
                     "BLOCK_K": cfg.block_k, "EVEN_K": True}
            out[name] = triton.compile(ASTSource(fn=sg.skinny_prologue_kernel, signature=sig, constexprs=const,
                                                 attrs=_attrs(sig, aligned)), target=target, options=opts)
    return out


REGISTERS_PER_SM = 65536  # a Hopper SM's register file, 32-bit registers


def attention_report(arch: int) -> dict[str, dict]:
    """Decode attention's hand-pipelined kernel (PREFETCH, one split, 32 heads of 128, block size 16)
    compiled for ``arch``: registers, spills and shared memory, and the programs an SM holds by
    registers (allocated 8 a thread at a time), at each tile, warp count and with the rope or not."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from gpu.engine import attention as A

    ptr16 = ("q_ptr", "k_ptr", "v_ptr", "o_ptr", "cos_ptr", "sin_ptr")
    names = ["q_ptr", "k_ptr", "v_ptr", "bt_ptr", "ctx_ptr", "o_ptr", "m_ptr", "l_ptr", "acc_ptr", "scale",
             "stride_qt", "stride_qh", "stride_kb", "stride_ks", "stride_kh", "stride_bt", "stride_ot",
             "stride_oh", "cos_ptr", "sin_ptr", "stride_cos", "slot_ptr"]
    sig = {n: "*fp16" if n in ptr16 else "*fp32" if n in ("m_ptr", "l_ptr", "acc_ptr") else
           "*i32" if n in ("bt_ptr", "ctx_ptr", "slot_ptr") else "fp32" if n == "scale" else "i32" for n in names}
    aligned = [n for n in names if n.endswith("_ptr") or n.startswith("stride")]
    report = {}
    for rope in (False, True):
        for tile in (16, 32):
            for warps in (1, 2, 4):
                const = {"NUM_HEADS": 32, "SPLITS": 1, "STAGES": 1, "GROUP": 1, "BLOCK_SIZE": 16, "HEAD_DIM": 128,
                         "TILE": tile, "HEAD_FAST": False, "PDL": False, "PREFETCH": True, "ROPE": rope,
                         "LATE_TRIGGER": False, "PREWAIT": False}
                s = dict(sig, **{k: "constexpr" for k in const})
                ck = triton.compile(ASTSource(fn=A._paged_decode_kernel, signature=s, constexprs=const,
                                              attrs=_attrs(s, aligned)), target=GPUTarget("cuda", arch, 32),
                                    options={"num_warps": warps, "num_stages": 1})
                r = kernel_resources(ck)
                if r.get("registers"):
                    per_program = -(-r["registers"] // 8) * 8 * 32 * warps
                    r["programs_per_sm_by_registers"] = REGISTERS_PER_SM // per_program
                report[f"tile {tile}, {warps} warp{'s' if warps > 1 else ''}{', rope' if rope else ''}"] = r
    return report


def global_atomics(ptx: str) -> int:
    """Global-memory atomics and reductions (``atom.global``, ``red.global``) in a kernel's PTX."""
    return sum(1 for line in ptx.splitlines() if opcode(line.strip()).startswith(("atom.global", "red.global")))


def epilogue_report(arch: int, rows: int, hidden: int = 4096) -> dict[str, dict]:
    """The engine's epilogue GEMMs at 17-32 rows (WIDE_EPILOGUE_CONFIG's row scale, the GLU config's
    GLU, WIDE_EPILOGUE_NARROW_CONFIG's residual) compiled for ``arch`` at ``rows`` rows, each with the
    row sums of squares by atomics and as stored parts (one an N tile of a ``hidden``-column residual
    GEMM): registers, spilled bytes, shared bytes and global atomics."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from gpu.engine import model as em
    from gpu.kernels import skinny_gemm as sg

    ptrs = {"x_ptr": "*fp16", "w_ptr": "*fp16", "y_ptr": "*fp16", "ss_in_ptr": "*fp32", "res_ptr": "*fp16",
            "g_ptr": "*fp16", "hg_ptr": "*fp16", "ss_out_ptr": "*fp32", "part_ptr": "*fp32", "count_ptr": "*i32"}
    ints = ["M", "N", "K", "n_up", "eps", "k_per_split", "n_ss_in", "stride_xm", "stride_wn", "stride_ym",
            "stride_resm", "stride_hgm", "stride_ss_in", "stride_ss_out"]
    sig = dict(ptrs, **{n: "fp32" if n == "eps" else "i32" for n in ints})
    aligned = list(ptrs) + ["N", "K", "k_per_split", "stride_xm", "stride_wn", "stride_ym", "stride_resm",
                            "stride_hgm", "stride_ss_in", "stride_ss_out"]
    narrow = sg.SkinnyConfig.from_name(em.WIDE_EPILOGUE_NARROW_CONFIG)
    parts = triton.next_power_of_2(sg.ss_parts(hidden, narrow))
    report = {}
    kernels = (("row scale", em.WIDE_EPILOGUE_CONFIG, "norm"), ("GLU", em.WIDE_EPILOGUE_GLU_CONFIG, "glu"),
               ("residual", em.WIDE_EPILOGUE_NARROW_CONFIG, "resid"))
    for what, name, kind in kernels:
        cfg = sg.SkinnyConfig.from_name(name)
        for atomic in (True, False):
            const = {"ROW_SCALE": kind != "resid", "GLU": kind == "glu", "RESID": kind == "resid",
                     "BLOCK_M": sg.block_m(rows), "BLOCK_N": cfg.block_n, "BLOCK_K": cfg.block_k, "EVEN_K": True,
                     "SPLIT_K": cfg.split_k, "SWAP_AB": cfg.swap_ab,
                     "SS_IN_BLOCK": 1 if atomic or kind == "resid" else parts, "SS_ATOMIC": atomic}
            s = dict(sig, **{k: "constexpr" for k in const})
            ck = triton.compile(ASTSource(fn=sg.skinny_epilogue_kernel, signature=s, constexprs=const,
                                          attrs=_attrs(s, aligned)), target=GPUTarget("cuda", arch, 32),
                                options={"num_warps": cfg.num_warps, "num_stages": cfg.num_stages})
            r = kernel_resources(ck)
            r["global_atomics"] = global_atomics(ck.asm["ptx"])
            report[f"{what}, {name}, {'atomics' if atomic else 'parts'}"] = r
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=None, help="a SkinnyConfig name (default: the engine's)")
    ap.add_argument("--arch", type=int, default=90, help="CUDA compute capability x 10 (90: Hopper)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--rows", type=int, default=16, help="rows of x (batch), 1..64: BLOCK_M follows it")
    ap.add_argument("--n", type=int, default=None, help="a balanced config's weight rows (its tile follows)")
    ap.add_argument("--programs", type=int, default=132, help="a balanced config's programs (132: the H200's SMs)")
    ap.add_argument("--attention", action="store_true", help="decode attention's kernel instead of the GEMM")
    ap.add_argument("--epilogues", action="store_true",
                    help="the engine's 17-32-row epilogue GEMMs (at --rows rows), the sums of squares both ways")
    args = ap.parse_args(argv)
    if not 1 <= args.rows <= 64:
        ap.error(f"--rows: 1..64, got {args.rows}")
    if args.programs < 1:
        ap.error(f"--programs: at least 1, got {args.programs}")
    # the kernels must be compiled, not interpreted: set before the first Triton import of this process
    os.environ["TRITON_INTERPRET"] = "0"
    try:
        import triton  # noqa: F401
    except ImportError:
        print("ptx_report: needs Triton (no GPU)", file=sys.stderr)
        return 2
    import triton

    from gpu.common.meta import collect_metadata
    from gpu.kernels.skinny_gemm import SkinnyConfig
    if args.epilogues:
        meta = collect_metadata(arch=args.arch, triton=triton.__version__, rows=args.rows,
                                note="compiled for the target only; no GPU used, no time measured")
        _resource_table(args.json, meta, epilogue_report(args.arch, args.rows),
                        f"the epilogue GEMMs at {args.rows} rows, sm_{args.arch}, Triton {meta['triton']}",
                        "global atomics", "global_atomics")
        return 0
    if args.attention:
        meta = collect_metadata(arch=args.arch, triton=triton.__version__,
                                note="compiled for the target only; no GPU used, no time measured")
        _resource_table(args.json, meta, attention_report(args.arch),
                        f"decode attention, hand-pipelined loop, one split, sm_{args.arch}, Triton {meta['triton']}",
                        "programs an SM holds by registers", "programs_per_sm_by_registers")
        return 0
    if args.config is None:
        from gpu.engine.model import SKINNY_CONFIG
        args.config = SKINNY_CONFIG
    try:
        cfg = SkinnyConfig.from_name(args.config)
    except ValueError as e:
        ap.error(f"--config: {e}")
    if cfg.balanced and args.n is None:
        ap.error("--n: a balanced config's tile follows the weight's rows; give them")
    kernels = compile_kernels(args.config, args.arch, args.rows, args.n, args.programs)
    block_n, block_k = cfg.balanced_tiling(args.n, args.programs) if cfg.balanced else (cfg.block_n, cfg.block_k)
    w_kb = block_n * block_k * 2 / 1024  # the W tile one iteration streams
    report = {}
    for name, ck in kernels.items():
        r = summarize(ck.asm["ptx"])
        r.update(kernel_resources(ck))
        # per thread, times the warps: the instructions the SM issues per KB of weights
        r["warp_instructions_per_w_kb"] = r["loop_instructions"] * cfg.num_warps / w_kb
        report[name] = r
    bm = sg_block_m(args.rows)
    meta = collect_metadata(config=args.config, arch=args.arch, triton=triton.__version__, block_m=bm,
                            block_n=block_n, block_k=block_k,
                            note="compiled for the target only; no GPU used, no time measured")
    if args.json:
        _write_json(args.json, {"meta": meta, "kernels": report})
    kinds = list(KINDS)
    print(f"K loop per iteration, {args.config}, sm_{args.arch}, BLOCK_M {bm}, BLOCK_N {block_n}, "
          f"BLOCK_K {block_k}, Triton {meta['triton']}")
    print("| kernel | instructions | warp instructions per KB of W | " + " | ".join(kinds)
          + " | cp.async bytes | wait depth | shared bytes | registers | spilled bytes |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in kinds) + " | --- | --- | ---: | ---: | ---: |")
    for name, r in report.items():
        cells = " | ".join(str(r["by_kind"][k]) for k in kinds)
        sizes = ", ".join(f"{b} B x {n}" for b, n in r["cp_async_bytes"].items())
        print(f"| {name} | {r['loop_instructions']} | {r['warp_instructions_per_w_kb']:.0f} | {cells} | {sizes} | "
              f"{'/'.join(map(str, r['wait_group_depths']))} | {r['shared_bytes']} | {r.get('registers')} | "
              f"{r.get('spill_bytes')} |")
    return 0


def _resource_table(json_path: Path | None, meta: dict, report: dict[str, dict], title: str, last: str,
                    last_key: str) -> None:
    """Writes ``report`` (with ``meta``) to ``json_path`` where given, and prints it as a table of each
    kernel's registers, spills, shared bytes and one more column (``last``, from ``last_key``)."""
    if json_path:
        _write_json(json_path, {"meta": meta, "kernels": report})
    print(title)
    print(f"| kernel | registers a thread | spilled bytes | shared bytes | {last} |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, r in report.items():
        print(f"| {name} | {r.get('registers')} | {r.get('spill_bytes')} | {r['shared_bytes']} | {r.get(last_key)} |")


def sg_block_m(rows: int) -> int:
    from gpu.kernels.skinny_gemm import block_m

    return block_m(rows)


def _write_json(path: Path, doc: dict) -> None:
    """``doc`` to ``path`` whole or not at all."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
