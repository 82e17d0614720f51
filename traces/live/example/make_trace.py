"""Writes trace.csv and catalogue.csv of the example live run (stdlib only, seeded).

16 adapters (ranks 8, 16, 32, 64, four of each; alpha = 2 x rank; q,k,v,o), Zipf(1.0)
popularity, 10 % of requests on the base model; Poisson arrivals at 6.5 requests/s for 45 s;
log-normal prompt (median 256, 16..1536) and output (median 96, 8..384) lengths.

    python3 traces/live/example/make_trace.py
"""

import math
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    rng = random.Random(20261123)
    ranks = [8, 16, 32, 64] * 4
    names = [f"a{i:02d}" for i in range(16)]
    with open(HERE / "catalogue.csv", "w") as f:
        f.write("adapter,rank,alpha,target_modules\n")
        for n, r in zip(names, ranks, strict=True):
            f.write(f"{n},{r},{2 * r},q_proj;k_proj;v_proj;o_proj\n")
    weights = [1.0 / (i + 1) for i in range(16)]
    order = names[:]
    rng.shuffle(order)  # popularity independent of rank
    t, rid, rows = 0.0, 0, []
    while True:
        t += rng.expovariate(6.5)
        if t > 45.0:
            break
        adapter = "" if rng.random() < 0.10 else rng.choices(order, weights)[0]
        prompt = min(1536, max(16, int(round(math.exp(rng.gauss(math.log(256), 0.8))))))
        output = min(384, max(8, int(round(math.exp(rng.gauss(math.log(96), 0.7))))))
        rows.append(f"{rid},{t:.6f},{adapter},{prompt},{output}")
        rid += 1
    with open(HERE / "trace.csv", "w") as f:
        f.write("request_id,arrival_s,adapter,prompt_tokens,output_tokens\n")
        f.write("\n".join(rows) + "\n")
    print(f"{len(rows)} requests")


if __name__ == "__main__":
    main()
