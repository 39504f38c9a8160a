"""Turn a study's grid into a Ray Tune sweep that resumes, and its finished trials into result rows.

Every study script calls `run_study`; none copies this plumbing. Resuming is Ray's own:
the same `storage_path` and `name` -> `Tuner.can_restore` -> `Tuner.restore`, so finished
trials are not rerun and unfinished ones continue from their last checkpoint. Rows are written
as trials finish (a driver-side callback) and reconciled once more at the end, so a driver
killed between a trial's end and its row still ends with exactly one row per cell.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.fs as pafs

from beat_ray.train.config import TrialConfig
from beat_ray.train.devices import cluster_capacity, decide_gpu, max_concurrent
from beat_ray.train.results import (
    append_rows,
    done_hashes,
    make_row,
    read_rows,
    results_dir,
    save_predictions,
)
from beat_ray.train.tune_fn import (
    CHECKPOINTS_KEPT,
    PREDICTIONS_FILE,
    train_run_name,
    trainable,
    trial_resources,
    worker_resources,
)

REPO = Path(__file__).resolve().parents[2]


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
             trial_path: str | None = None) -> dict:
    row = make_row(trial_config["trial"], metrics, trial_id)
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
        with checkpoint.as_directory() as d:
            p = Path(d) / PREDICTIONS_FILE
            if p.exists():
                with np.load(p) as z:
                    row["predictions_file"] = str(save_predictions(out, trial_id, dict(z)).relative_to(out))
    return row


def _storage_fs(storage_path: str):
    """The pyarrow filesystem of a `storage_path` URI (s3://, gs://); None for a local path."""
    return _exp_fs(storage_path)[0] if "://" in storage_path else None


def _results_callback(out: Path, fs=None):
    from ray.tune import Callback

    class ResultsWriter(Callback):
        """Append a trial's row once Tune's own experiment state knows the trial finished.

        Order matters for "finished trials are not rerun": Tune snapshots its experiment state
        every ~10 s (or when checkpoints force it). A row written before that snapshot, by a
        driver killed before it, would describe a trial that the restored sweep still runs again
        from its previous checkpoint. So a finished trial's row waits until Tune has saved a
        snapshot (`get_state` is called right after Tune wrote it) and goes to disk at the start
        of the next step, or at the end of the sweep. A driver killed in between leaves a
        trial that Tune has as TERMINATED and no row; `run_study` reconciles those after `fit`.
        """

        def __init__(self) -> None:
            self._pending: dict[str, dict] = {}       # finished, not yet in a saved snapshot
            self._ready: dict[str, dict] = {}         # in a saved snapshot: safe to write

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

        def _flush(self, rows: dict[str, dict]) -> None:
            have = set(read_rows(out).get("trial_id", []))
            new = [r for tid, r in rows.items() if tid not in have]
            if new:
                append_rows(out, new)
            rows.clear()

        def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
            if self._ready:
                self._flush(self._ready)

        def on_experiment_end(self, trials: list, **info: Any) -> None:
            self._promote()                           # the sweep is over: everything pending is final
            self._flush(self._ready)

    return ResultsWriter()


def prepare_inputs(cells: list[dict]) -> list[Path]:
    """Build every dataset and token cache once on the driver, before trials race for them; returns
    the cache dirs (token caches live inside their dataset's)."""
    from beat_ray.models import create
    from beat_ray.train.inputs import build_inputs, load_dataset

    seen, paths = set(), []
    for cell in cells:
        cfg = TrialConfig.from_dict(cell)
        key = (cfg.dataset, cfg.task, cfg.fs, cfg.n_records, cfg.data_seed, cfg.root, cfg.model, cfg.token_mode,
               cfg.max_beats, json.dumps(cfg.synth, sort_keys=True))
        if key not in seen:
            seen.add(key)
            ds = load_dataset(cfg)
            build_inputs(cfg, create(cfg.model, len(ds.classes), **cfg.model_kwargs), ds)
            if ds.path is not None and ds.path not in paths:
                paths.append(ds.path)
    return paths


def publish_caches(paths: list[Path], storage_path: str) -> str | None:
    """Upload the driver's caches beside the sweep (cachesync) when trials may run on other machines:
    a URI storage path (s3://, gs://, file://) or BEAT_RAY_PUBLISH_CACHE=1. Returns where trials look."""
    from beat_ray.data.cachesync import publish, published_location
    if "://" not in storage_path and os.environ.get("BEAT_RAY_PUBLISH_CACHE") != "1":
        return None
    dest = published_location(storage_path)
    for p in paths:
        print(f"data: cache {p.name} {'published to' if publish(p, dest) else 'already at'} {dest}")
    return dest


# Tune's live table: these grid keys always, plus any other scalar key that varies across the cells.
TABLE_COLUMNS = {"model": "model", "task": "task", "label_fraction": "fraction", "seed": "seed",
                 "test_fold": "fold"}
TABLE_METRICS = {"epoch": "epoch", "train_loss": "loss", "val_macro_auc": "val AUC",
                 "best_val_macro_auc": "best val", "test/macro_auc": "test AUC"}


def table_columns(cells: list[dict]) -> dict[str, str]:
    """`trial/<key>` -> header for Tune's CLIReporter: the grid's coordinates, not a truncated dict."""
    cols = dict(TABLE_COLUMNS)
    skip = {"study", "preset", "root"}
    for k in cells[0]:
        vals = {repr(c.get(k)) for c in cells}
        if k not in cols and k not in skip and len(vals) > 1:
            cols[k] = k
    return {f"trial/{k}": v for k, v in cols.items()}


def progress_reporter(cells: list[dict]):
    """Tune's live table for a grid: its coordinates (table_columns) and the metrics."""
    return cli_reporter(table_columns(cells))


def cli_reporter(parameter_columns: dict[str, str]):
    """Tune's own CLIReporter with these parameter columns. Tune's newer output engine ignores reporters
    (it shows `trial` as a truncated dict), so run_study selects the classic one (RAY_AIR_NEW_OUTPUT=0)."""
    import sys

    from ray.tune import CLIReporter

    from beat_ray.progress import LOG_INTERVAL_S, is_tty
    return CLIReporter(parameter_columns=parameter_columns, metric_columns=TABLE_METRICS,
                       max_progress_rows=40, max_column_length=24, sort_by_metric=False,
                       max_report_frequency=5 if is_tty(sys.stdout) else int(LOG_INTERVAL_S))


def longest_first(cells: list[dict]) -> list[dict]:
    """Order cells by expected cost, largest first (stable), so the sweep does not end on one slot.

    With a fixed number of trial slots, starting the long trials (full label fraction, more
    epochs) first leaves the short ones to fill the gaps at the end (LPT scheduling); in grid
    order a 100%-label trial started last runs alone while the other slots sit idle.
    """
    return sorted(cells, key=lambda c: -float(c.get("label_fraction", 1.0)) * float(c.get("epochs", 1)))


GRID_FILE = "beat_ray_grid.json"
# Set per launch from the cluster it runs on (devices.decide_gpu): a resume on other hardware is not a changed grid.
DEVICE_FIELDS = ("use_gpu", "gpus_per_trial", "allow_cpu_fallback")


def _exp_fs(exp_path: str):
    if "://" in exp_path:
        return pafs.FileSystem.from_uri(exp_path)
    return pafs.LocalFileSystem(), str(Path(exp_path).resolve())


def _grid_key(cell: dict) -> str:
    return json.dumps({k: v for k, v in cell.items() if k not in DEVICE_FIELDS}, sort_keys=True, default=str)


def grid_changes(old: list[dict], new: list[dict]) -> list[str]:
    """What differs between a stored grid and this launch's, field by field ('epochs: [2] -> [3]')."""
    if sorted(map(_grid_key, old)) == sorted(map(_grid_key, new)):
        return []
    out = []
    for k in sorted({k for c in old + new for k in c} - set(DEVICE_FIELDS)):
        a, b = sorted({repr(c.get(k)) for c in old}), sorted({repr(c.get(k)) for c in new})
        if a != b:
            out.append(f"{k}: {', '.join(a)} -> {', '.join(b)}")
    return out or [f"the cells ({len(old)} stored, {len(new)} now) combine the same values differently"]


def check_grid(exp_path: str, cells: list[dict], resume_changed: bool) -> None:
    """Refuse to resume a sweep whose grid changed (Tune restores its stored grid and would silently
    ignore the change); with `resume_changed` continue the stored grid and say so. The grid is kept
    beside Tune's experiment state, on the same storage (local, NFS or s3://)."""
    old = stored_grid(exp_path)
    if old is None:
        print(f"resume: {exp_path} has no {GRID_FILE} (a sweep from before grids were stored): cannot check "
              "that its grid is this launch's")
        return
    changes = grid_changes(old, json.loads(json.dumps(cells, sort_keys=True, default=str)))   # as stored: tuples -> lists
    if not changes:
        return
    what = "; ".join(changes)
    if not resume_changed:
        raise SystemExit(f"{exp_path} was launched with another grid ({what}). Resuming would continue the "
                         "stored grid and ignore this change. Give the new grid a new --name, or pass "
                         "--resume-changed to finish the stored grid as it was.")
    print(f"resume: --resume-changed: continuing the stored grid; this launch's changes are ignored ({what})")


def stored_grid(exp_path: str) -> list[dict] | None:
    fs, path = _exp_fs(exp_path)
    gfile = f"{path}/{GRID_FILE}"
    if fs.get_file_info(gfile).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(gfile) as fh:
        return json.loads(fh.read().decode())


def cells_to_run(grid_cells: list[dict], out: Path, restoring: str | None) -> list[int]:
    """Indices of the cells to launch: those without a row in the results folder. A preset extended
    (say from one seed to three) trains only its new cells, and a cell is never trained twice into one
    folder. A resumed sweep (`restoring` = its path) keeps every cell it stored, finished or not, so its
    grid check compares like with like."""
    done = done_hashes(read_rows(out))
    stored = stored_grid(restoring) if restoring else None
    keep = {TrialConfig.from_dict(c).config_hash() for c in stored} if stored is not None else set()
    hashes = [TrialConfig.from_dict(c).config_hash() for c in grid_cells]
    if restoring and stored is None:    # a sweep from before grids were stored: Tune's own state rules
        return list(range(len(grid_cells)))
    return [i for i, h in enumerate(hashes) if h in keep or h not in done]


def save_grid(exp_path: str, cells: list[dict]) -> None:
    fs, path = _exp_fs(exp_path)
    fs.create_dir(path, recursive=True)
    tmp = f"{path}/.{GRID_FILE}.tmp"
    with fs.open_output_stream(tmp) as fh:
        fh.write(json.dumps(cells, sort_keys=True, default=str, indent=1).encode())
    fs.move(tmp, f"{path}/{GRID_FILE}")             # a rename: a crash leaves the old file or the new one


def init_ray() -> None:
    """Join RAY_ADDRESS's cluster or start a local one, unless this process already has Ray."""
    import ray
    if ray.is_initialized():
        return
    # the trials' cache dir: BEAT_RAY_TRIAL_CACHE where the trials' disk is not the driver's, else the
    # driver's BEAT_RAY_CACHE. In a `ray job` the job's runtime env rules (a repeated key is an error).
    trial_cache = os.environ.get("BEAT_RAY_TRIAL_CACHE") or os.environ.get("BEAT_RAY_CACHE")
    ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False,
             runtime_env={"env_vars": {"BEAT_RAY_CACHE": trial_cache}}
             if trial_cache and "RAY_JOB_CONFIG_JSON_ENV_VAR" not in os.environ else None)


def run_study(cells: list[dict], *, study: str, preset: str, storage_path: str | None = None,
              name: str | None = None, results_root: str | Path = REPO / "results",
              max_concurrent_trials: int | None = None, max_failures: int = 2,
              gpus_per_trial: float | None = None, allow_cpu_fallback: bool = False,
              resume_changed: bool = False) -> Path:
    """Run (or resume) one sweep over `cells` and return the folder holding trials.parquet.

    `gpus_per_trial` (None: each cell's own wish, honoured only if the cluster has or can autoscale
    to GPUs; see devices.decide_gpu) and `allow_cpu_fallback` apply to every cell. Resuming a sweep
    whose grid changed is refused unless `resume_changed` (check_grid).
    """
    from ray import tune
    from ray.tune import (
        CheckpointConfig,
        FailureConfig,
        PlacementGroupFactory,
        RunConfig,
        TuneConfig,
        Tuner,
    )

    name = name or f"{study}-{preset}"
    storage_path = storage_path or str(Path(results_root).resolve().parent / ".ray_results")
    out = results_dir(results_root, study, preset)
    exp_path = f"{storage_path.rstrip('/')}/{name}"
    try:
        grid_cells = [TrialConfig.from_dict({**c, "study": study, "preset": preset}).to_dict() for c in cells]
    except ValueError as exc:           # e.g. --gpus-per-trial 0.5 with workers=2
        raise SystemExit(f"{study}/{preset}: {exc}") from None
    restoring = Tuner.can_restore(exp_path)
    todo = cells_to_run(grid_cells, out, exp_path if restoring else None)
    if len(todo) < len(grid_cells):
        print(f"{study}/{preset}: {len(grid_cells) - len(todo)} of {len(grid_cells)} cells already have a row in "
              f"{out} (same config hash); not trained again" + ("" if todo else ": nothing to run"))
    cells, grid_cells = [cells[i] for i in todo], [grid_cells[i] for i in todo]
    if not cells:
        return out
    if restoring:                       # before Ray starts: a refusal costs nothing
        check_grid(exp_path, grid_cells, resume_changed)
    init_ray()
    capacity = cluster_capacity()
    cells = decide_gpu(cells, capacity, gpus_per_trial, allow_cpu_fallback)
    try:
        cells = longest_first([TrialConfig.from_dict({**c, "study": study, "preset": preset}).to_dict()
                               for c in cells])
    except ValueError as exc:           # e.g. --gpus-per-trial 0.5 with workers=2
        raise SystemExit(f"{study}/{preset}: {exc}") from None
    gpu_cells = sum(bool(c["use_gpu"]) for c in cells)
    print(f"devices: {gpu_cells} of {len(cells)} trials on GPU"
          + (f" ({sorted({c['gpus_per_trial'] for c in cells if c['use_gpu']})} per worker)" if gpu_cells else "")
          + f"; cluster: {capacity.gpus_now:g} GPUs now, up to {capacity.gpus_max:g} ({capacity.source})")
    cache_source = publish_caches(prepare_inputs(cells), storage_path)
    configs = [TrialConfig.from_dict(c) for c in cells]
    if max_concurrent_trials is None and any(c.distributed for c in configs):
        # a TorchTrainer trial's driver needs only 0.01 CPU: without a cap, Tune would start a driver per
        # cell that then waits for worker resources. Cap at the trials whose workers the largest cluster
        # (alive nodes + what the autoscaler may launch) holds, GPUs and CPUs both counted.
        max_concurrent_trials = max_concurrent(
            [(worker_resources(c), c.workers) for c in configs if c.distributed], capacity)
    # Single-device trials need no cap: a trial is its own worker, so Tune starts what fits, and the
    # pending ones are what an autoscaling cluster (e.g. a 0-CPU head) scales up for.
    # Resources come per cell (a grid may mix CPU and GPU cells).
    fn = tune.with_resources(trainable, lambda config: PlacementGroupFactory(
        [trial_resources(TrialConfig.from_dict(config["trial"]))]))
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")      # the classic output engine honours progress_reporter
    fs = _storage_fs(storage_path)
    if restoring:
        tuner = Tuner.restore(exp_path, trainable=fn, resume_unfinished=True, resume_errored=True)
    else:
        save_grid(exp_path, grid_cells)
        tuner = Tuner(fn, param_space={"trial": tune.grid_search(cells), "cache_source": cache_source},
                      tune_config=TuneConfig(max_concurrent_trials=max_concurrent_trials or None, reuse_actors=True),
                      run_config=RunConfig(name=name, storage_path=storage_path, verbose=1,
                                           progress_reporter=progress_reporter(cells),
                                           callbacks=[_results_callback(out, fs)],
                                           failure_config=FailureConfig(max_failures=max_failures),
                                           checkpoint_config=CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT)))
    grid = tuner.fit()
    have = set(read_rows(out).get("trial_id", []))      # rows the callback wrote stay as written
    rows = [_row_for(r.config, r.metrics, r.metrics["trial_id"], r.checkpoint, out, fs, r.path)
            for r in grid if r.error is None and finished(r.config, r.metrics)
            and r.metrics["trial_id"] not in have]
    if rows:
        append_rows(out, rows)          # reconcile: rows a killed driver never wrote
    errors = [r.error for r in grid if r.error is not None]
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(grid)} trials failed; first error: {errors[0]}")
    return out
