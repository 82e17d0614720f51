"""Adds the step tables written by gpu/profile_steps.py to a profile directory and records them in
its meta.json (schema 2, docs/profile-format.md). The kernel table and its metadata stay as
they are. Usage: python3 gpu/merge_profile.py STEP_PROFILE_DIR PROFILE_DIR

The step profile's ``decode_attention`` (the engine's split rule for decode attention) and
``graph_sizes`` (its decode CUDA-graph batch sizes) go to the top of meta.json. Step profiles
written before profile_steps.py recorded them lack them; for those,
``python3 gpu/merge_profile.py --decode-attention HEADS COMMIT PROFILE_DIR`` records them from
gpu/engine/attention.py and executor.py as they are now, naming the commit the profile was
measured at, which the caller must have checked has the same constants
(``git diff COMMIT -- gpu/engine/attention.py gpu/engine/executor.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

TABLES = {
    "step_decode": "decode-only steps through the CUDA graphs, by sequences and context per sequence",
    "step_decode_varied": ("decode-only steps with mixed contexts and scattered KV blocks (not fitted: a check of the "
                           "decode model)"),
    "step_tokens": ("steps of N new tokens with negligible attention (chunks of up to 256 tokens, no cache), as the "
                    "engine runs them: the token graph of N where token_graph_sizes has N, else eager"),
    "step_tokens_eager": "step_tokens' batches forced eager (not read by the twin: the token graphs' gain)",
    "step_attention": "eager steps with long prefill chunks and decode rows: the attention terms",
    "lora_step": "step with LoRA on q, k, v, o minus the same step without, per kernel, tokens, segments, rank",
    "lora_token": ("a prompt chunk and decode rows through a token graph with LoRA minus the same step without, per "
                   "kernel, token-graph size (under dense_lora_from), segments, rank"),
    "step_mixed": ("eager steps made like live ones (unsorted multi-adapter decode rows, prompt and continuation "
                   "chunks, LoRA)"),
    "adapter_load": "the engine's loader: disk -> pinned host (source disk), pinned host -> GPU slot (source host), "
                    "whole loads while decode steps run (host_busy, disk_busy; profiles after e82f051)",
    "merge": "folding a rank-r adapter into the base weights (merge) and out again (unmerge)",
    "host_overhead": "the scheduler's pass and finish_step for N running sequences (CPU)",
}


def engine_split_rule(heads: int) -> dict:
    """DECODE_TARGET_PROGRAMS and DECODE_MAX_SPLITS read from gpu/engine/attention.py's source
    (this script imports no torch)."""
    import re

    engine = Path(__file__).resolve().parent / "engine"
    text = (engine / "attention.py").read_text()
    out: dict = {"heads": heads}
    for key, name in (("target_programs", "DECODE_TARGET_PROGRAMS"), ("max_splits", "DECODE_MAX_SPLITS")):
        m = re.search(rf"^{name} = (\d+)$", text, re.M)
        if not m:
            raise SystemExit(f"{name} not found in gpu/engine/attention.py")
        out[key] = int(m.group(1))
    m = re.search(r"^DEFAULT_GRAPH_SIZES = \(([\d, ]+)\)$", (engine / "executor.py").read_text(), re.M)
    if not m:
        raise SystemExit("DEFAULT_GRAPH_SIZES not found in gpu/engine/executor.py")
    out["graph_sizes"] = [int(x) for x in m.group(1).split(",") if x.strip()]
    return out


def record_rule(heads: str, commit: str, dst: str) -> int:
    meta_path = Path(dst) / "meta.json"
    meta = json.loads(meta_path.read_text())
    rule = engine_split_rule(int(heads))
    meta["graph_sizes"] = rule.pop("graph_sizes")
    meta["decode_attention"] = rule
    meta["decode_attention_source"] = (f"gpu/engine/attention.py and executor.py (DEFAULT_GRAPH_SIZES), constants "
                                       f"unchanged since {commit}")
    tmp = meta_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, meta_path)
    print(f"recorded decode_attention {meta['decode_attention']} in {meta_path}")
    return 0


def main(src: str, dst: str) -> int:
    s, d = Path(src), Path(dst)
    step_meta = json.loads((s / "meta.json").read_text())
    meta_path = d / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    # profiles of schema 2 made before these tables existed lack them
    optional = {"step_mixed", "step_decode_varied", "step_tokens_eager"}
    for name in TABLES:
        if name not in optional and not (s / f"{name}.csv").exists():
            print(f"missing {name}.csv in {s}", file=sys.stderr)
            return 1
    for name, what in TABLES.items():
        if not (s / f"{name}.csv").exists():
            continue
        shutil.copyfile(s / f"{name}.csv", d / f"{name}.csv")
        meta.setdefault("tables", {})[name] = {"file": f"{name}.csv", "method": what, "timing": step_meta["timing"]}
    meta["schema_version"] = 2
    meta.pop("token_graph_sizes", None)  # a profile without token graphs must not keep another's
    for key in ("decode_attention", "graph_sizes", "token_graph_sizes"):
        if step_meta.get(key):  # an empty token_graph_sizes: none (the twin refuses an empty list)
            meta[key] = step_meta[key]
    if step_meta.get("decode_attention"):  # not the base profile's note on where its rule came from
        meta["decode_attention_source"] = (f"gpu/profile_steps.py at {step_meta.get('commit')}: the engine's "
                                           "constants as the profile ran")
    meta.setdefault("gpu_name", step_meta.get("gpu"))
    meta["model"] = step_meta.get("model")
    meta["step_profile"] = {k: step_meta.get(k) for k in (
        "date", "commit", "command", "gpu", "driver", "torch", "triton", "cuda", "dtype", "kv_blocks",
        "graph_capture_s", "lora_kernels", "seconds", "rest", "decode_rest", "dense_lora_from", "decode_blas")}
    if "decode_gemm" in step_meta:  # profiles measured after 1386b0a
        meta["step_profile"]["decode_gemm"] = step_meta["decode_gemm"]
    tmp = meta_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, meta_path)
    print(f"merged {len(TABLES)} step tables into {d}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--decode-attention"]:
        sys.exit(record_rule(*sys.argv[2:5]))
    sys.exit(main(*sys.argv[1:3]))
