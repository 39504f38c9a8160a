"""Fail at once, with the fix, when a study runs under an interpreter that lacks our dependencies.

Why: a Ray head started without the venv activated runs a job's `python ...` entrypoint with the
system interpreter, and the job dies deep in an import with `No module named 'pandas'`. This module
imports nothing beyond the standard library, so it can speak before that happens.
"""
from __future__ import annotations

import importlib.util
import sys

# import names of pyproject's dependencies (what a study needs to start)
REQUIRED: tuple[str, ...] = ("numpy", "scipy", "pandas", "pyarrow", "torch", "ray", "wfdb", "neurokit2",
                             "sklearn", "matplotlib", "tqdm", "yaml")


def missing() -> list[str]:
    return [m for m in REQUIRED if importlib.util.find_spec(m) is None]


def require() -> None:
    """SystemExit (exit code 2, the message on stderr) when any dependency is missing."""
    gone = missing()
    if gone:
        print(f"beat-ray: this interpreter ({sys.executable}) lacks beat-ray's dependencies: {', '.join(gone)}.\n"
              "  Locally: `make install`, then run studies with .venv/bin/python (or activate .venv).\n"
              "  As a Ray job on a local head: submit with `cluster/submit.sh http://127.0.0.1:8265 python ...`, "
              "which puts .venv/bin first on the job's PATH, or start the head from an activated venv "
              "(`source .venv/bin/activate && ray start --head`).\n"
              "  On a cluster: the nodes' image must have the pinned dependencies (cluster/Dockerfile).",
              file=sys.stderr)
        raise SystemExit(2)
