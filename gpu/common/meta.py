"""Metadata recorded beside every measured number: GPU, driver, CUDA, torch, triton, date, commit.

``collect_metadata`` imports torch lazily; on a machine without it the GPU fields are ``None``.
The git commit comes from ``$GIT_COMMIT`` when set (the device machine gets the tree without
``.git``), else from ``git rev-parse HEAD``.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys
from typing import Any


def git_commit() -> str | None:
    """The commit the code was run from: ``$GIT_COMMIT`` or ``git rev-parse HEAD`` (None if neither)."""
    env = os.environ.get("GIT_COMMIT")
    if env:
        return env
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _driver_version() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True)
        return out.stdout.strip().splitlines()[0] or None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def collect_metadata(command: str | None = None, **extra: Any) -> dict[str, Any]:
    """Describe this run: software versions, GPU, date (UTC), git commit, and the command line."""
    meta: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": git_commit(),
        "command": command if command is not None else shlex.join([os.path.basename(sys.executable), *sys.argv]),
        "python": platform.python_version(),
        "hostname": platform.node(),
        "gpu_name": None, "gpu_count": 0, "sm_count": None, "l2_bytes": None, "gpu_memory_bytes": None,
        "driver": _driver_version(), "cuda": None, "torch": None, "triton": None,
    }
    try:
        import torch

        meta["torch"] = torch.__version__
        meta["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            meta.update(gpu_name=p.name, gpu_count=torch.cuda.device_count(), sm_count=p.multi_processor_count,
                        l2_bytes=getattr(p, "L2_cache_size", None), gpu_memory_bytes=p.total_memory,
                        compute_capability=f"{p.major}.{p.minor}")
    except ImportError:
        pass
    try:
        import triton

        meta["triton"] = triton.__version__
    except ImportError:
        pass
    meta.update(extra)
    return meta
