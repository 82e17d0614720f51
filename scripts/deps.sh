#!/usr/bin/env bash
# Installs what LoRA Twin needs on a Debian machine that has Swift: GSL and OpenBLAS (apt), and
# for the CPU-side Python checks pytest, PyYAML and ruff. Only what is missing is installed.
set -euo pipefail
apt_packages=(libgsl-dev libopenblas-dev)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ "${1:-}" = "--python" ]; then
  if ! python3 -c "import pytest, yaml" 2>/dev/null || ! python3 -m ruff --version >/dev/null 2>&1; then
    echo "installing pytest, pyyaml, ruff" >&2
    python3 -m pip install -q pytest pyyaml ruff 2>/dev/null \
      || python3 -m pip install -q --break-system-packages pytest pyyaml ruff
  fi
fi
