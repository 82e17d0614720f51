"""Dop: per-scenario search of the multi-LoRA operator's implementation space (issue 9).

- ``space``: sketches and details, scenarios, validity, mutation and crossover (torch-free).
- ``kernels``: the Triton kernels of every sketch and ``dop_apply`` (torch, Triton).
- ``search``: evolutionary search guided by a scikit-learn cost model; resumable JSON state.
- ``measure``: correctness check against the float64 reference and CUDA-graph timing (GPU).
- ``table``: tuned table and docs/dop.md from the state (torch-free); ``dispatch``: run-time lookup.
- ``run.py``: the one entry script of a GPU call.
"""
