#!/usr/bin/env bash
# The GPU path on a real CUDA machine, in under 10 minutes (issue K): one GPU trial, a kill-and-resume of
# it, a 2-worker DDP trial if 2 GPUs exist, and 4 concurrent 0.25-GPU trials with nvidia-smi utilisation.
# Writes benchmarks/out/gpu_check.json. Never part of .ci/run (CI has no GPU); exits 2 without CUDA.
#   benchmarks/gpu_check.sh                 # from the repository root, after `make install` with a CUDA torch
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
export RAY_USAGE_STATS_ENABLED=0 PYTHONHASHSEED=0
export BEAT_RAY_CACHE="${BEAT_RAY_CACHE:-$(mktemp -d /tmp/gpu_check_cache.XXXXXX)}"
export PATH="$(dirname "$PY"):$PATH"
exec timeout 600 "$PY" benchmarks/gpu_check.py
