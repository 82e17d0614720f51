"""Shared helpers for the GPU scripts: run metadata (``meta``), CUDA-event timing (``timing``),
measured hardware ceilings (``peaks``). Importing ``meta`` needs no torch."""
