#!/usr/bin/env python3
"""Twin-only what-if for dLoRA's options (docs/schedulers.md): the recorded d01-d04 traces and
engine configurations, each with the profile its scenario names, under FCFS, dLoRA as recorded
(draft 2), dLoRA with decode-only speeds (`speed: decode`), with credit paid by drains
(`drain_credit: true`) and with the aging guard (`max_wait_s`). Prints a Markdown table of the
twin's predictions. Not a validation: none of the options has run live.

Usage: python3 scripts/dlora_variants_whatif.py [--bin .build/release/loratwin]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from schedulers_live import ROOT, cold_wait  # noqa: E402

# Each pinned to draft 2 (`drain_credit: false`, the default until lease 67078bf-1) but the one that
# names drain_credit, so the tables these scripts wrote read the same.
VARIANTS = (("FCFS", "fcfs"), ("dLoRA (draft 2)", "{kind: dlora, drain_credit: false}"),
            ("dLoRA, speed: decode", "{kind: dlora, speed: decode, drain_credit: false}"),
            ("dLoRA, drain_credit", "{kind: dlora, drain_credit: true}"),
            ("dLoRA, max_wait_s: 5", "{kind: dlora, max_wait_s: 5, drain_credit: false}"),
            ("dLoRA, max_wait_s: 2", "{kind: dlora, max_wait_s: 2, drain_credit: false}"))
RUNS = ("d01-skewed-zipf2", "d02-identical-heavy-share95", "d03-popularity-shift-rot3", "d04-cold-adapter-share90")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / ".build/release/loratwin"))
    args = ap.parse_args()
    print("| trace | scheduler | req/s | TTFT p50 s | E2E p99 s | longest wait s | cold adapters' longest wait s "
          "| merges |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as td:
        for run in RUNS:
            src = ROOT / "traces/live" / run
            text = (src / "scenario.yaml").read_text()
            for i, (name, sched) in enumerate(VARIANTS):
                d = Path(td) / f"{run}-{i}"
                d.mkdir()
                yaml = re.sub(r"^scheduler: .*$", f"scheduler: {sched}", text, flags=re.M)
                yaml = yaml.replace("trace: trace.csv", f"trace: {src / 'trace.csv'}")
                yaml = yaml.replace("catalogue: trace.catalogue.csv", f"catalogue: {src / 'trace.catalogue.csv'}")
                yaml = yaml.replace("profile: ../../../profiles/", f"profile: {ROOT / 'profiles'}/")
                (d / "scenario.yaml").write_text(yaml)
                out = subprocess.run([args.bin, "simulate", str(d / "scenario.yaml"), "--json", "-o", str(d / "o"),
                                      "--batch-log", str(d / "b.jsonl")], check=True, capture_output=True, text=True)
                m = json.loads(out.stdout)
                merges = sum(1 for line in open(d / "b.jsonl") if '"switch": "merge' in line)
                print(f"| {run} | {name} | {m['requests_per_s']:.2f} | {m['ttft']['p50_s']:.2f} | "
                      f"{m['e2e']['p99_s']:.2f} | {m['longest_wait_s']:.1f} | "
                      f"{cold_wait(d / 'o' / 'requests.csv'):.1f} | {merges} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
