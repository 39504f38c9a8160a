"""Issue D acceptance, "resume test": SIGKILL a smoke sweep's driver (and with it its local Ray) after
the first trial has finished, rerun the same command, and check that Ray resumed it: exact row count,
unique trial ids, and no finished trial trained again (its row and its Tune result log are untouched).

The sweep's Ray gets its own temp root (RAY_TMPDIR), so `ray.init()` cannot join another Ray instance
on the machine, and every process of the sweep carries a marker in its environment, so the test can
check that the kill left nothing behind and clean up only what it started.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from procs import kill_pids, load_presets, marked_pids, private_ray

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.ray


def _describe(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
        return f"pgid={os.getpgid(pid)} ppid={Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[1]} {cmd}"
    except OSError as e:
        return str(e)


def _rows(folder: Path) -> pd.DataFrame:
    path = folder / "trials.parquet"
    try:
        return pd.read_parquet(path) if path.exists() else pd.DataFrame()
    except (OSError, ValueError):   # never torn (atomic rename), but be safe while polling
        return pd.DataFrame()


def _trial_dir(exp: Path, trial_id: str) -> Path:
    dirs = [d for d in exp.iterdir() if d.is_dir() and f"_{trial_id}_" in d.name]
    assert len(dirs) == 1, (trial_id, dirs)
    return dirs[0]


def _checkpoints(exp: Path, trial_id: str) -> dict[str, int]:
    """Checkpoint files of a trial with their mtimes: a rerun would add or rewrite some."""
    d = _trial_dir(exp, trial_id)
    return {str(f.relative_to(d)): f.stat().st_mtime_ns for f in d.glob("checkpoint_*/**/*") if f.is_file()}


def _tune_results(exp: Path) -> dict[str, list[dict]]:
    """trial_id -> the results Tune logged for it (result.json, one line per report)."""
    out: dict[str, list[dict]] = {}
    for f in exp.glob("*/result.json"):
        lines = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        if lines:
            out.setdefault(lines[0]["trial_id"], []).extend(lines)
    return out


def test_killed_sweep_resumes_without_rerunning_finished_trials(beat_ray_cache, tmp_path):
    # The smoke grid, shrunk: this test is about the plumbing, not about what the models learn.
    small = {"n_records": 300, "epochs": 2}
    cells = [{**c, **small} for c in load_presets("data_efficiency")["smoke"].cells()]
    epochs = cells[0]["epochs"]

    ray_tmp, marker, env = private_ray("resume", beat_ray_cache)
    res, storage = tmp_path / "results", tmp_path / "storage"
    out, exp = res / "data_efficiency" / "smoke", storage / "resume"
    cmd = [sys.executable, "experiments/data_efficiency.py", "--preset", "smoke", "--name", "resume",
           "--storage-path", str(storage), "--results-root", str(res), "--max-concurrent-trials", "1",
           *[a for k, v in small.items() for a in ("--set", f"{k}={v}")]]
    try:
        with open(tmp_path / "run1.log", "w") as log:
            first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
            deadline = time.monotonic() + 240
            while len(_rows(out)) < 1:
                assert first.poll() is None, (tmp_path / "run1.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "no trial finished in 240 s"
                time.sleep(0.2)
            os.killpg(first.pid, signal.SIGKILL)        # the driver and the Ray it started
            first.wait()
        # Ray's services die with the driver (they fate-share with it). A worker that was still
        # starting up sits in its own process group and exits on its own once it finds no raylet
        # (about 30 s here); those we SIGKILL by pid. Anything else surviving is a leak.
        deadline = time.monotonic() + 15
        while (left := [p for p in marked_pids(marker) if "default_worker.py" not in _describe(p)]) \
                and time.monotonic() < deadline:
            time.sleep(0.25)
        desc = {pid: _describe(pid) for pid in left}
        kill_pids(marked_pids(marker))
        assert left == [], f"Ray processes survived the driver's SIGKILL: {desc}"

        before = _rows(out)
        assert 1 <= len(before) < len(cells), "the kill must land mid-sweep"
        # Tune's result.json reaches storage lazily (a SIGKILL may lose lines), so "not rerun" is
        # judged on what a rerun could not avoid touching: rows, checkpoints and new result lines.
        finished = list(before["trial_id"])
        logged_before = _tune_results(exp)
        ckpts_before = {tid: _checkpoints(exp, tid) for tid in finished}
        assert all(len(c) >= 1 for c in ckpts_before.values()), ckpts_before

        # a resume whose grid changed is refused before Ray starts, naming the field (issue L)
        changed = subprocess.run([*cmd, "--set", "epochs=3"], cwd=REPO, env=env, capture_output=True, text=True,
                                 timeout=120, check=False)
        assert changed.returncode != 0 and "Traceback" not in changed.stderr
        assert "another grid (epochs: 2 -> 3)" in changed.stderr and "new --name" in changed.stderr
        assert len(_rows(out)) == len(before)

        again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=400, check=False)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        deadline = time.monotonic() + 15
        while [p for p in marked_pids(marker) if "default_worker.py" not in _describe(p)] \
                and time.monotonic() < deadline:
            time.sleep(0.25)
        assert [p for p in marked_pids(marker) if "default_worker.py" not in _describe(p)] == []

        after = _rows(out)
        # exact row count, one per grid cell, ids unique, every trial ran all its epochs
        assert len(after) == len(cells) and after["trial_id"].is_unique
        assert sorted(zip(after["config/model"], after["config/label_fraction"], after["seed"])) == \
            sorted((c["model"], c["label_fraction"], c["seed"]) for c in cells)
        assert (after["epoch"] == epochs).all() and (after["training_iteration"] == epochs).all()
        # the same experiment resumed: no new trial ids, and every Tune trial has its row
        from ray.tune import ExperimentAnalysis
        ea = ExperimentAnalysis(str(exp))
        assert sorted(t.trial_id for t in ea.trials) == sorted(after["trial_id"])
        assert all(t.status == "TERMINATED" for t in ea.trials)
        # finished trials were not rerun: same rows, same checkpoints, no new results logged
        kept = after.set_index("trial_id").loc[finished]
        for col in ("finished_at", "timestamp", "test/macro_auc", "train_seconds", "time_total_s"):
            assert list(kept[col]) == list(before[col]), col
        assert {tid: _checkpoints(exp, tid) for tid in finished} == ckpts_before
        logged_after = _tune_results(exp)
        for tid in finished:
            assert logged_after.get(tid, []) == logged_before.get(tid, [])
        resumed = after[after["iterations_since_restore"] < after["training_iteration"]]
        print(f"killed after {len(before)} of {len(cells)} trials; "
              f"{len(resumed)} trial(s) continued from a checkpoint: {list(resumed['trial_id'])}")
    finally:
        kill_pids(marked_pids(marker))
        shutil.rmtree(ray_tmp, ignore_errors=True)
