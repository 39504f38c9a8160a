"""Turn a study's grid into a Ray Tune sweep that resumes, and its finished trials into result rows.

Every study script calls `run_study`; none copies this plumbing. Resuming is Ray's own:
the same `storage_path` and `name` -> `Tuner.can_restore` -> `Tuner.restore`, so finished
trials are not rerun and unfinished ones continue from their last checkpoint. Rows are written
as trials finish (a driver-side callback) and reconciled once more at the end, so a driver
killed between a trial's end and its row still ends with exactly one row per cell. A head that lost
its --results-root gets every finished trial's row back from the storage path (`reconcile`).
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import pyarrow.fs as pafs

from beat_ray.train.config import TrialConfig
from beat_ray.train.devices import cluster_capacity, decide_gpu, max_concurrent
from beat_ray.train.results import done_hashes, read_rows, results_dir
from beat_ray.train.storage import (
    ENDPOINT_VARS,
    StorageUnreachable,
    check_reachable,
    storage_fs,
    unreachable,
)
from beat_ray.train.sweep_rows import (  # noqa: F401  (imported from here by tests, benchmarks)
    _results_callback,
    finished,
    reconcile,
    stored_bytes,
)
from beat_ray.train.tune_fn import (
    CHECKPOINTS_KEPT,
    trainable,
    trial_resources,
    worker_resources,
)

REPO = Path(__file__).resolve().parents[2]


def _storage_fs(storage_path: str):
    """The pyarrow filesystem of a `storage_path` URI (s3://, gs://); None for a local path."""
    return _exp_fs(storage_path)[0] if "://" in storage_path else None


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


def publishes(storage_path: str) -> bool:
    """Whether a sweep publishes its caches: a URI storage path (s3://, gs://, file://) or BEAT_RAY_PUBLISH_CACHE=1."""
    return "://" in storage_path or os.environ.get("BEAT_RAY_PUBLISH_CACHE") == "1"


@contextmanager
def published_caches_first(storage_path: str):
    """While preparing on the driver, copy a cache another launch published instead of building it again: a
    new head (the old one lost its disk) gets its caches from the storage path, as every worker node does."""
    from beat_ray.data.cachesync import SOURCE_ENV, published_location
    old = os.environ.get(SOURCE_ENV)
    if publishes(storage_path) and old is None:
        os.environ[SOURCE_ENV] = published_location(storage_path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(SOURCE_ENV, None)


def publish_caches(paths: list[Path], storage_path: str) -> str | None:
    """Upload the driver's caches beside the sweep (cachesync) when trials may run on other machines:
    a URI storage path (s3://, gs://, file://) or BEAT_RAY_PUBLISH_CACHE=1. Returns where trials look."""
    from beat_ray.data.cachesync import publish, published_location
    if not publishes(storage_path):
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
    return storage_fs(exp_path)


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
    env_vars = {"BEAT_RAY_CACHE": trial_cache} if trial_cache else {}
    # the trials write checkpoints to the driver's S3 endpoint (MinIO, Ceph), not to AWS: same endpoint everywhere
    env_vars.update({v: os.environ[v] for v in ENDPOINT_VARS if os.environ.get(v)})
    ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=False,
             runtime_env={"env_vars": env_vars} if env_vars and "RAY_JOB_CONFIG_JSON_ENV_VAR" not in os.environ
             else None)


def _stop_if_unreachable(exp_path: str, exc: BaseException) -> None:
    """A failure caused by a storage path that no longer answers ends the driver with one clear message."""
    if isinstance(exc, StorageUnreachable):
        raise SystemExit(str(exc)) from None
    try:
        check_reachable(exp_path)
    except StorageUnreachable:
        raise SystemExit(str(unreachable(exp_path, exc))) from None


def _restore(exp_path: str, fn, writer, out: Path, fs):
    """Tuner.restore with this launch's results writer, after rebuilding the rows of the finished trials that
    `out` lacks (a new head lost them): they come back before anything trains."""
    from ray.tune import Tuner
    tuner = Tuner.restore(exp_path, trainable=fn, resume_unfinished=True, resume_errored=True)
    # the restored RunConfig holds the writer pickled at the first launch (its folder, its code): use this one
    run_config = tuner._local_tuner.get_run_config()
    run_config.callbacks = [c for c in run_config.callbacks or [] if type(c).__name__ != "ResultsWriter"] + [writer]
    try:
        rebuilt = reconcile(tuner.get_results(), out, fs, exp_path)
    except OSError as exc:
        _stop_if_unreachable(exp_path, exc)
        raise
    except Exception as exc:
        print(f"resume: rows not rebuilt before the sweep ({type(exc).__name__}: {exc}); they are after it")
        return tuner
    if rebuilt:
        print(f"resume: {rebuilt} finished trial(s) had no row in {out}: rebuilt from {exp_path} "
              "(Tune's state and each trial's last checkpoint), not trained again")
    return tuner


def run_study(cells: list[dict], *, study: str, preset: str, storage_path: str | None = None,
              name: str | None = None, results_root: str | Path = REPO / "results",
              max_concurrent_trials: int | None = None, max_failures: int = 2,
              gpus_per_trial: float | None = None, allow_cpu_fallback: bool = False,
              resume_changed: bool = False) -> Path:
    """Run (or resume) one sweep over `cells` and return the folder holding trials.parquet.

    `gpus_per_trial` (None: each cell's own wish, honoured only if the cluster has or can autoscale
    to GPUs; see devices.decide_gpu) and `allow_cpu_fallback` apply to every cell. Resuming a sweep
    whose grid changed is refused unless `resume_changed` (check_grid). A resume first rebuilds, from the
    storage path, the rows of finished trials that the results folder lacks (a new head: `reconcile`).
    A storage path that stops answering stops the sweep with a message naming its endpoint.
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
        check_reachable(storage_path)
    except StorageUnreachable as exc:
        raise SystemExit(str(exc)) from None
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
    with published_caches_first(storage_path):
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
    writer = _results_callback(out, fs, exp_path)
    if restoring:
        tuner = _restore(exp_path, fn, writer, out, fs)
    else:
        save_grid(exp_path, grid_cells)
        tuner = Tuner(fn, param_space={"trial": tune.grid_search(cells), "cache_source": cache_source},
                      tune_config=TuneConfig(max_concurrent_trials=max_concurrent_trials or None, reuse_actors=True),
                      run_config=RunConfig(name=name, storage_path=storage_path, verbose=1,
                                           progress_reporter=progress_reporter(cells),
                                           callbacks=[writer],
                                           failure_config=FailureConfig(max_failures=max_failures),
                                           checkpoint_config=CheckpointConfig(num_to_keep=CHECKPOINTS_KEPT)))
    try:
        grid = tuner.fit()
        reconcile(grid, out, fs, exp_path)      # rows a killed driver never wrote; the callback's stay as written
    except Exception as exc:                    # Tune wraps the writer's StorageUnreachable in TuneErrors
        _stop_if_unreachable(exp_path, writer.stopped_by or exc)
        raise
    errors = [r.error for r in grid if r.error is not None]
    if errors:
        _stop_if_unreachable(exp_path, errors[0])
        raise RuntimeError(f"{len(errors)} of {len(grid)} trials failed; first error: {errors[0]}")
    return out
