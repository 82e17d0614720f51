#!/usr/bin/env python3
"""Adds the column `prefill_max_keys` to a step profile measured before profile_steps wrote it.

    python3 scripts/profile_max_keys.py PROFILE_DIR [--check]

`prefill_max_keys` is the most keys one prefill chunk of a row attends to (cached context plus
the chunk's tokens; docs/profile-format.md). It is an input of each timed step, not a timing:
- `step_attention.csv`: every row has one chunk, so with n = tokens - decode_seqs and pairs =
  n * (c + (n + 1) / 2), c = pairs / n - (n + 1) / 2 (refused unless a whole number >= 0);
- `step_mixed.csv`: the compositions come from one seeded generator (gpu/common/mixed.py, which
  gpu/profile_steps.py runs); the script replays it for the profile's kernels (meta.json
  `step_profile.lora_kernels`, in order) and refuses the file unless every row's kernel, tokens, prefill
  tokens, chunks, continuations, pairs, decode rows, decode context and longest decode context
  equal the replay's.
Nothing is written unless both tables pass; each file is replaced whole (written beside, then
renamed). A table that already has the column is checked against the derivation instead.
`--check` writes nothing. Exit status: 0 done (or checked), 1 a row does not match, 2 bad input.
No torch.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpu.common.mixed import PER_KIND, PER_KIND_QUICK, compositions  # noqa: E402

COLUMN = "prefill_max_keys"


class Mismatch(Exception):
    pass


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


def attention_keys(path: Path, rows: list[dict[str, str]]) -> list[int]:
    keys = []
    for line, r in enumerate(rows, start=2):
        n = int(r["tokens"]) - int(r["decode_seqs"])
        if n < 1:
            raise Mismatch(f"{path}:{line}: column tokens: no prefill chunk (tokens - decode_seqs = {n})")
        c = float(r["prefill_pairs"]) / n - (n + 1) / 2
        if c < -1e-6 or abs(c - round(c)) > 1e-6:
            raise Mismatch(f"{path}:{line}: column prefill_pairs: {r['prefill_pairs']} is not one chunk of {n} tokens "
                           f"after a whole number of cached tokens (c = {c})")
        keys.append(round(c) + n)
    return keys


def mixed_keys(path: Path, rows: list[dict[str, str]], kinds: list[str]) -> list[int]:
    per_kind = {k: sum(1 for r in rows if r["kernel"] == k) for k in kinds}
    counts = set(per_kind.values())
    if len(counts) != 1 or counts.pop() not in (PER_KIND, PER_KIND_QUICK):
        raise Mismatch(f"{path}: column kernel: rows per kernel {per_kind} are not {PER_KIND} (or {PER_KIND_QUICK}) "
                       f"for each of meta.json's lora_kernels {kinds}")
    comps = compositions(kinds, per_kind[kinds[0]])
    if len(comps) != len(rows):
        raise Mismatch(f"{path}: {len(rows)} rows, the generator gives {len(comps)}")
    keys = []
    for line, (r, c) in enumerate(zip(rows, comps), start=2):
        want = {
            "kernel": c.kind, "tokens": c.prefill_tokens + len(c.decode), "prefill_tokens": c.prefill_tokens,
            "prefill_chunks": len(c.chunks), "continuation_chunks": c.continuation_chunks,
            "prefill_pairs": c.prefill_pairs, "decode_seqs": len(c.decode),
            "decode_context_tokens": c.decode_context_tokens, "decode_max_context": c.decode_max_context,
        }
        for col, v in want.items():
            got = r[col] if col == "kernel" else float(r[col])
            if (got != v) if col == "kernel" else abs(got - v) > 1e-6:
                raise Mismatch(f"{path}:{line}: column {col}: {r[col]}, the generator's composition has {v}")
        keys.append(c.prefill_max_keys)
    return keys


def with_column(path: Path, fields: list[str], rows: list[dict[str, str]], keys: list[int], after: str) -> str:
    if COLUMN in fields:
        for line, (r, k) in enumerate(zip(rows, keys), start=2):
            if int(r[COLUMN]) != k:
                raise Mismatch(f"{path}:{line}: column {COLUMN}: {r[COLUMN]}, derived {k}")
        return ""
    i = fields.index(after) + 1
    out = fields[:i] + [COLUMN] + fields[i:]
    lines = [",".join(out)]
    for r, k in zip(rows, keys):
        r = dict(r, **{COLUMN: str(k)})
        lines.append(",".join(r[c] for c in out))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile")
    ap.add_argument("--check", action="store_true", help="check only, write nothing")
    args = ap.parse_args(argv)
    prof = Path(args.profile)
    try:
        meta = json.loads((prof / "meta.json").read_text())
        att_path, mix_path = prof / "step_attention.csv", prof / "step_mixed.csv"
        af, ar = read(att_path)
        plans = [(att_path, af, ar, attention_keys(att_path, ar), "decode_context_tokens")]
        if mix_path.exists():
            kinds = (meta.get("step_profile") or {}).get("lora_kernels")
            if not kinds:
                print(f"{prof / 'meta.json'}: field step_profile.lora_kernels: missing (the kernels step_mixed was measured for)",
                      file=sys.stderr)
                return 2
            mf, mr = read(mix_path)
            plans.append((mix_path, mf, mr, mixed_keys(mix_path, mr, list(kinds)), "decode_max_context"))
        texts = [(p, with_column(p, f, r, k, after)) for p, f, r, k, after in plans]
    except Mismatch as e:
        print(e, file=sys.stderr)
        return 1
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as e:
        print(f"{prof}: {e}", file=sys.stderr)
        return 2
    for path, text in texts:
        if not text:
            print(f"{path}: {COLUMN} present and equal to the derivation")
        elif args.check:
            print(f"{path}: {COLUMN} derivable for every row (not written: --check)")
        else:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
            print(f"{path}: {COLUMN} added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
