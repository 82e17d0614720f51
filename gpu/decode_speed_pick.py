"""Which decode-attention configuration gpu/decode_speed.sh times in the whole step: the best one
of gpu/bench_decode_attention.py at batch 32 x 128 tokens, printed as HEADS,TILE,WARPS,STAGES for
``gpu/bench_engine.py --decode-attention``, when it is at least MARGIN faster than the engine's
default there and runs the sequence-fastest launch order (bench_engine sets no launch order);
nothing printed otherwise (the reason on stderr).

    python3 gpu/decode_speed_pick.py DIR/decode_attention.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CASE = "32x128"
MARGIN = 0.03  # 3 % of the attention's time: less is within the bench's repeat-to-repeat spread


def pick(best: dict) -> tuple[str | None, str]:
    """(HEADS,TILE,WARPS,STAGES or None, why) from decode_attention.json's ``best``."""
    b = best.get(CASE)
    if b is None:
        return None, f"no {CASE} case"
    if b.get("head_fast"):
        return None, f"the best at {CASE} is head-fast ({b['us']:.1f} us); bench_engine sets no launch order"
    if not b["us"] < (1 - MARGIN) * b["default_us"]:
        return None, f"best {b['us']:.1f} us against the default's {b['default_us']:.1f} us at {CASE}"
    return f"{b.get('heads', 1)},{b['tile']},{b['warps']},{b['stages']}", "faster"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        best = json.loads(Path(argv[0]).read_text())["best"]
    except (OSError, KeyError, ValueError) as e:
        print(f"{argv[0]}: {e}", file=sys.stderr)
        return 1
    cfg, why = pick(best)
    print(why, file=sys.stderr)
    if cfg:
        print(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
