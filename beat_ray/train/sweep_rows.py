"""A sweep's result rows from its Tune trials: written as trials finish, rebuilt from the storage path.

Why a module of its own: a row must never describe a trial that a restored sweep would train again,
and a head that lost its results folder must get every finished trial's row back. `ResultsWriter`
(a driver-side Tune callback) writes a row only once the *stored* experiment state has its trial as
TERMINATED; `reconcile` rebuilds rows from Tune's state (final metrics), each trial's last
checkpoint (predictions) and the provenance saved beside the sweep (storage.py).
"""
from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.fs as pafs

from beat_ray.train.results import append_rows, make_row, read_rows, save_predictions
from beat_ray.train.storage import (
    StorageUnreachable,
    check_reachable,
    is_uri,
    load_provenance,
    save_provenance,
    stored_trial_status,
)
from beat_ray.train.tune_fn import PREDICTIONS_FILE, train_run_name


def stored_bytes(paths: list[str], fs=None) -> int:
    """Bytes under `paths` in the sweep's storage (a trial's checkpoints and logs): what retention bounds."""
    fs = fs or pafs.LocalFileSystem()
    total = 0
    for p in paths:
        if fs.get_file_info(p).type != pafs.FileType.Directory:
            continue
        total += sum(i.size or 0 for i in fs.get_file_info(pafs.FileSelector(p, recursive=True))
                     if i.type == pafs.FileType.File)
    return total


def finished(trial_config: dict, metrics: dict | None) -> bool:
    """A trial's last report is its final one: it scored the test fold, or (score_test=False, a
    validation-only study) it ran its last epoch."""
    if not metrics or not trial_config:     # a trial an interrupted sweep never started has neither
        return False
    if "test/macro_auc" in metrics:
        return True
    cell = trial_config["trial"]
    return not cell.get("score_test", True) and metrics.get("epoch") == cell.get("epochs")


def _row_for(trial_config: dict, metrics: dict, trial_id: str, checkpoint, out: Path, fs=None,
             trial_path: str | None = None, provenance: dict | None = None) -> dict:
    row = make_row(trial_config["trial"], metrics, trial_id)
    row.update(provenance or {})        # a rebuilt row keeps the commit, host and time it was first written with
    if not trial_config["trial"].get("score_test", True):
        row["test/macro_auc"] = float("nan")        # never scored: a validation-only row says so
    if trial_path:
        # the Tune trial's folder, plus a TorchTrainer trial's Train run folder beside the experiment's
        storage, experiment, _ = trial_path.rstrip("/").rsplit("/", 2)
        row["storage_bytes"] = stored_bytes([trial_path, f"{storage}/{train_run_name(experiment, trial_id)}"], fs)
    if checkpoint is None and metrics.get("checkpoint_path"):
        # a TorchTrainer trial: its checkpoints live in the Train run's storage, not in the Tune trial's
        from ray.train import Checkpoint
        checkpoint = Checkpoint(metrics["checkpoint_path"], filesystem=fs)
    if checkpoint is not None:
        preds = _checkpoint_predictions(checkpoint)
        if preds is not None:
            row["predictions_file"] = str(save_predictions(out, trial_id, preds).relative_to(out))
    return row


def _checkpoint_predictions(checkpoint) -> dict | None:
    """The predictions file of a (possibly remote) checkpoint, read alone: the model state beside it can be
    hundreds of MB that a rebuilt row does not need."""
    path = f"{checkpoint.path.rstrip('/')}/{PREDICTIONS_FILE}"
    if checkpoint.filesystem.get_file_info(path).type != pafs.FileType.File:
        return None
    with checkpoint.filesystem.open_input_stream(path) as fh, np.load(io.BytesIO(fh.read())) as z:
        return {k: z[k] for k in z.files}


STATE_CHECK_S = 1.0     # how often a waiting row asks the storage whether Tune's snapshot has reached it


def _results_callback(out: Path, fs=None, exp_path: str | None = None):
    from ray.tune import Callback

    class ResultsWriter(Callback):
        """Append a trial's row once Tune's own experiment state knows the trial finished.

        Order matters for "finished trials are not rerun": Tune snapshots its experiment state
        every ~10 s (or when checkpoints force it). A row written before that snapshot, by a
        driver killed before it, would describe a trial that the restored sweep still runs again
        from its previous checkpoint. So a finished trial's row waits until Tune has saved a
        snapshot (`get_state` is called right after Tune wrote it) and, since Tune uploads that
        snapshot to `exp_path` in the background, until the stored snapshot has the trial as
        TERMINATED: a head that loses its disk restores from the stored one. Then it goes to disk
        (with its provenance to the storage), or at the end of the sweep. A driver killed in
        between leaves a trial that Tune has as TERMINATED and no row; `run_study` reconciles those.
        If the storage stops answering, the sweep stops at the first trial it fails (naming the
        endpoint) instead of burning every trial's retries on it.
        """

        def __init__(self) -> None:
            self._pending: dict[str, dict] = {}       # finished, not yet in a saved snapshot
            self._ready: dict[str, dict] = {}         # in a saved snapshot: written once it is stored
            self._checked = 0.0
            self.stopped_by: StorageUnreachable | None = None       # the storage stopped answering: why

        def on_trial_complete(self, iteration: int, trials: list, trial, **info: Any) -> None:
            # A trial restored from its final checkpoint (its completion not yet in the experiment
            # state when the driver died) completes again without training: keep its first row.
            if (finished(trial.config, trial.last_result)
                    and trial.trial_id not in set(read_rows(out).get("trial_id", []))):
                self._pending[trial.trial_id] = _row_for(trial.config, trial.last_result, trial.trial_id,
                                                         trial.checkpoint, out, fs, trial.path)

        def _promote(self) -> None:
            self._ready.update(self._pending)
            self._pending.clear()

        def get_state(self) -> None:
            """Tune calls this right after writing its snapshot; we keep no state of our own in it."""
            self._promote()

        def _stored(self) -> list[str]:
            """Ready trials that the stored experiment state has as TERMINATED (asked at most every STATE_CHECK_S)."""
            if exp_path is None:
                return list(self._ready)
            if time.monotonic() - self._checked < STATE_CHECK_S:
                return []
            self._checked = time.monotonic()
            try:
                status = stored_trial_status(exp_path)
            except (OSError, ValueError):             # unreachable, or a state file mid-upload: ask again later
                return []
            return [tid for tid in self._ready if status.get(tid) == "TERMINATED"]

        def _flush(self, tids: list[str]) -> None:
            rows = {tid: self._ready.pop(tid) for tid in tids}
            have = set(read_rows(out).get("trial_id", []))
            new = [r for tid, r in rows.items() if tid not in have]
            if new:
                _keep_provenance(exp_path, new)     # first: a row on the head implies its provenance in the storage
                append_rows(out, new)

        def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
            if self._ready:
                self._flush(self._stored())

        def _check_storage(self) -> None:
            if exp_path and is_uri(exp_path):
                try:
                    check_reachable(exp_path)
                except StorageUnreachable as exc:
                    self.stopped_by = exc
                    raise

        def on_trial_recover(self, iteration: int, trials: list, trial, **info: Any) -> None:
            self._check_storage()

        def on_trial_error(self, iteration: int, trials: list, trial, **info: Any) -> None:
            self._check_storage()

        def on_experiment_end(self, trials: list, **info: Any) -> None:
            if self.stopped_by:                       # the store is gone: write nothing it does not have
                return
            self._promote()                           # the sweep is over: everything pending is final
            self._flush(list(self._ready))

    return ResultsWriter()


def _keep_provenance(exp_path: str | None, rows: list[dict]) -> None:
    """Save rows' provenance beside the sweep (storage.save_provenance), before the rows go to the head's disk.
    An upload that fails does not hold the rows back: it only costs a lost head this provenance (a rebuilt
    row then records its rebuild's)."""
    if not exp_path or not rows:
        return
    try:
        save_provenance(exp_path, rows)
    except OSError as exc:
        print(f"warning: provenance of {len(rows)} row(s) not saved to {exp_path}: {str(exc).splitlines()[0]}")


def reconcile(grid, out: Path, fs=None, exp_path: str | None = None) -> int:
    """Write the rows of `grid`'s finished trials that `out` lacks, rebuilt from Tune's state (final metrics) and
    each trial's last checkpoint (predictions), with the provenance saved beside the sweep. Returns how many.

    After `fit`: rows a killed driver never wrote. Before a restored `fit`: everything a lost head lost."""
    have = set(read_rows(out).get("trial_id", []))
    done = [r for r in grid if r.error is None and finished(r.config, r.metrics)
            and r.metrics["trial_id"] not in have]
    if not done:
        return 0
    kept = load_provenance(exp_path) if exp_path else {}
    rows = [_row_for(r.config, r.metrics, r.metrics["trial_id"], r.checkpoint, out, fs, r.path,
                     kept.get(r.metrics["trial_id"])) for r in done]
    _keep_provenance(exp_path, [r for r in rows if r["trial_id"] not in kept])
    append_rows(out, rows)
    return len(rows)
