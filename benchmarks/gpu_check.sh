#!/usr/bin/env bash
# The GPU path on a real CUDA machine, in under 10 minutes (issues K, 36): BEAT-Net tiny/base and xresnet1d101
# on CUDA, host vs device ms per step, a kill-and-resume shown to resume, DDP (2 GPUs) and the crop test, and
# 4 concurrent 0.25-GPU trials shown to overlap (benchmarks/gpu_check.py says what each step asserts).
# Writes benchmarks/out/gpu_check.json. Never part of .ci/run (CI has no GPU); exits 2 without CUDA.
#   benchmarks/gpu_check.sh                 # from the repository root, after `make install` with a CUDA torch
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
export RAY_USAGE_STATS_ENABLED=0 PYTHONHASHSEED=0
export BEAT_RAY_CACHE="${BEAT_RAY_CACHE:-$(mktemp -d /tmp/gpu_check_cache.XXXXXX)}"
export PATH="$(dirname "$PY"):$PATH"
exec timeout 600 "$PY" benchmarks/gpu_check.py
