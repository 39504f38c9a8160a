"""Read -> validate -> resample -> fix length -> fold -> cache, once per config.

Every source goes through the same steps, so a PTB-XL record and a CPSC record are masked
for the same reasons and counted in the same data report. The cache dir name carries a hash
of the config; a file lock makes concurrent Ray trials wait for one preparation instead of
racing to write the same cache.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from beat_ray.data.cachesync import SOURCE_ENV, fetch
from beat_ray.data.dataset import SPLITS, ECGDataset, fold_to_split
from beat_ray.data.errors import RecordError
from beat_ray.data.npywriter import NpyRowWriter
from beat_ray.data.signal import fix_length, resample
from beat_ray.data.sources import SOURCES, RecordRef, Source
from beat_ray.data.splits import stratified_group_folds, write_folds_csv
from beat_ray.progress import progress_bar

PREP_VERSION = 1
FLAT_STD_MV = 1e-4          # a lead whose std is below this is flat (0.1 µV)
DEFAULT_TASKS = {"synth": "all", "ptbxl": "superdiagnostic", "cpsc2018": "all", "chapman": "rhythm"}


# cache dir -> how this process got it ("local cache ...", "copied from ...", "prepared from ..."):
# rows and trial logs say where a trial read its data
ORIGIN: dict[str, str] = {}


def default_cache_dir() -> Path:
    """$BEAT_RAY_CACHE, else ~/.cache/beat_ray: shared by every trial on a node."""
    return Path(os.environ.get("BEAT_RAY_CACHE", Path.home() / ".cache" / "beat_ray"))


def config_key(config: dict[str, Any]) -> str:
    """Short stable hash of a JSON-able config."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _ensure_sources() -> None:
    # Importing the reader modules registers them; kept lazy so `import beat_ray.data` stays light.
    import beat_ray.data.cinc
    import beat_ray.data.ptbxl  # noqa: F401


def make_source(name: str, **kwargs: Any) -> Source:
    _ensure_sources()
    if name not in SOURCES:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(['synth', *SOURCES])}")
    return SOURCES[name](**kwargs)


def check_record(sig: np.ndarray, path: str) -> tuple[np.ndarray, list[int], list[int]]:
    """Raise for unusable signals; mask what can be masked.

    A lead that is entirely NaN is an absent lead (a source read with ``require_all=False``):
    it is zero-filled and counted. NaN/inf inside a present lead is corruption: the record is
    dropped. Flat leads are kept and counted; a record with no live lead is dropped.
    Returns (signal, absent lead indices, flat lead indices).
    """
    finite = np.isfinite(sig)
    absent = [i for i in range(sig.shape[0]) if not finite[i].any()]
    corrupt = [i for i in range(sig.shape[0]) if not finite[i].all() and i not in absent]
    if corrupt:
        raise RecordError(path, f"non-finite samples (NaN/inf) in lead rows {corrupt}", reason="nan_samples")
    if absent:
        sig = sig.copy()
        sig[absent] = 0.0
    flat = [i for i in range(sig.shape[0]) if i not in absent and float(np.std(sig[i])) < FLAT_STD_MV]
    if len(absent) + len(flat) == sig.shape[0]:
        raise RecordError(path, f"no live lead ({len(absent)} absent, {len(flat)} flat)", reason="all_leads_flat")
    return sig, absent, flat


def _load_one(args: tuple[Source, RecordRef, int, int, float]) -> tuple[np.ndarray | None, dict]:
    src, ref, fs, n_samples, min_seconds = args
    info: dict[str, Any] = {"record_id": ref.record_id}
    try:
        sig, fs_in = src.read(ref)
        if sig.shape[-1] / fs_in < min_seconds:
            raise RecordError(ref.path, f"record is {sig.shape[-1] / fs_in:.2f} s, shorter than "
                                        f"min_seconds={min_seconds}", reason="too_short")
        sig, info["absent_leads"], info["flat_leads"] = check_record(sig, ref.path)
        sig = resample(sig, fs_in, fs)
        sig, info["length"] = fix_length(sig, n_samples)
        return sig.astype(np.float32), info
    except RecordError as err:
        info.update(reason=err.reason, detail=str(err))
        return None, info


def _prepare_files(src: Source, root: Path, task: str, fs: int, seconds: float, min_seconds: float,
                   seed: int, workers: int, progress: bool, signals_file: Path) -> ECGDataset:
    """Read every record of `root`; kept signals stream into `signals_file` (.npy), never all in RAM."""
    if not root.exists():
        raise RecordError(root, "dataset root does not exist", reason="missing_file")
    index = src.index(root, task)
    if not index.refs:
        raise RecordError(root, f"no usable records for task {task!r} "
                                f"({len(index.dropped)} dropped while indexing)", reason="empty")
    n_samples = int(round(seconds * fs))
    jobs = [(src, ref, fs, n_samples, min_seconds) for ref in index.refs]
    kept_refs: list[RecordRef] = []
    rows = NpyRowWriter(signals_file, len(jobs), (12, n_samples))
    dropped = [{"record_id": r, "reason": why, "detail": d} for r, why, d in index.dropped]
    lengths: Counter = Counter()
    flat_records, absent_records = [], []
    bar = progress_bar(total=len(jobs), desc=f"prepare {src.name}/{task}", unit="rec", disable=not progress)
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    results = pool.map(_load_one, jobs, chunksize=32) if pool else map(_load_one, jobs)
    try:
        for ref, (sig, info) in zip(index.refs, results):
            bar.update()
            if sig is None:
                dropped.append(info)
                continue
            kept_refs.append(ref)
            rows.append(sig)                  # straight to the file
            lengths[info["length"]] += 1
            if info["flat_leads"]:
                flat_records.append({"record_id": ref.record_id, "flat_leads": info["flat_leads"]})
            if info["absent_leads"]:
                absent_records.append({"record_id": ref.record_id, "absent_leads": info["absent_leads"]})
    except BaseException:
        rows.abort()
        raise
    finally:
        bar.close()
        if pool:
            pool.shutdown()
    rows.close()
    if len(kept_refs) < 10:
        reasons = Counter(d["reason"] for d in dropped)
        raise RecordError(root, f"only {len(kept_refs)} usable records (need >= 10 for 10 folds); "
                                f"dropped: {dict(reasons)}", reason="empty")
    classes = index.classes
    labels = np.zeros((len(kept_refs), len(classes)), dtype=np.uint8)
    col = {c: i for i, c in enumerate(classes)}
    for i, ref in enumerate(kept_refs):
        for lab in ref.labels:
            labels[i, col[lab]] = 1
    rec_ids = np.array([r.record_id for r in kept_refs], dtype=object)
    pat_ids = np.array([r.patient_id for r in kept_refs], dtype=object)
    if all(r.fold is not None for r in kept_refs):
        folds = np.array([r.fold for r in kept_refs], dtype=np.int64)
        fold_source = "dataset"
    else:
        folds = stratified_group_folds(labels, pat_ids, 10, seed)
        fold_source = f"stratified_group_kfold(seed={seed})"
    report = {"records_listed": len(index.refs) + len(index.dropped), "records_kept": len(kept_refs),
              "dropped": dropped, "length_fix": dict(lengths), "length_policy":
              f"first {seconds} s kept; shorter records zero-padded at the end (min {min_seconds} s)",
              "flat_lead_records": flat_records, "absent_lead_records": absent_records,
              "fold_source": fold_source,
              # label codes outside the task's classes (SNOMED for Challenge sources): ignored, counted
              "unknown_codes": dict(sorted(getattr(src, "unknown_codes", {}).items()))}
    return ECGDataset(name=src.name, task=task, signals=np.load(signals_file, mmap_mode="r"), labels=labels,
                      classes=list(classes),
                      fs=fs, record_ids=rec_ids, patient_ids=pat_ids, folds=folds,
                      class_groups=dict(index.class_groups), report=report)


def summarize(ds: ECGDataset) -> dict[str, Any]:
    """Counts per split and class; merged into the stored report."""
    split = fold_to_split(ds.folds)
    counts = {s: {c: int(ds.labels[split == s, j].sum()) for j, c in enumerate(ds.classes)} for s in SPLITS}
    dropped = ds.report.get("dropped", [])
    return {"dataset": ds.name, "task": ds.task, "fs": ds.fs, "n_records": len(ds),
            "n_per_split": {s: int((split == s).sum()) for s in SPLITS},
            "n_patients": int(len(set(ds.patient_ids))), "classes": list(ds.classes),
            "class_counts": counts, "dropped_by_reason": dict(Counter(d["reason"] for d in dropped))}


def prepare(dataset: str, root: str | Path | None = None, task: str | None = None, fs: int = 100,
            seconds: float = 10.0, cache_dir: str | Path | None = None, seed: int = 0,
            min_seconds: float = 5.0, workers: int = 1, force: bool = False, progress: bool = True,
            **source_kwargs: Any) -> Path:
    """Build (or find) the cache for one config and return its directory."""
    task = task or DEFAULT_TASKS.get(dataset)
    config = {"dataset": dataset, "root": str(Path(root).resolve()) if root else None, "task": task,
              "fs": int(fs), "seconds": float(seconds), "seed": int(seed), "min_seconds": float(min_seconds),
              "source_kwargs": source_kwargs, "version": PREP_VERSION}
    if dataset == "synth":          # its defaults live in code: a new generator must not reuse old caches
        from beat_ray.data.synth import GENERATOR_VERSION
        config["synth_generator"] = GENERATOR_VERSION
    cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
    path = cache_root / f"{dataset}-{task}-{fs}hz-{config_key(config)}"
    with _locked(cache_root / f".{path.name}.lock"):
        if (path / "meta.json").exists() and not force:
            ORIGIN[str(path)] = f"local cache {path}"
            return path
        source = os.environ.get(SOURCE_ENV)
        took = None if force or not source else fetch(path, source)
        if took is not None:
            ORIGIN[str(path)] = f"copied from {source}/{path.name} to {path} in {took:.1f} s"
            print(f"beat-ray: dataset cache {ORIGIN[str(path)]}", flush=True)
            return path
        ORIGIN[str(path)] = f"prepared from {root or dataset} into {path}"
        if dataset == "synth":
            from beat_ray.data.synth import SynthConfig, generate
            ds = generate(SynthConfig(fs=int(fs), seconds=float(seconds), seed=int(seed), **source_kwargs),
                          task=task)
            ds.report.setdefault("records_listed", len(ds))
            ds.report.setdefault("records_kept", len(ds))
            ds.report.setdefault("dropped", [])
            signals_file = None
        else:
            src = make_source(dataset, fs=int(fs), **source_kwargs)
            if root is None:
                raise ValueError(f"dataset {dataset!r} needs --root (the folder holding its files)")
            cache_root.mkdir(parents=True, exist_ok=True)
            signals_file = cache_root / f".{path.name}.signals-{os.getpid()}.npy"
            try:
                ds = _prepare_files(src, Path(root), task, int(fs), float(seconds), float(min_seconds),
                                    int(seed), workers, progress, signals_file)
            except BaseException:
                signals_file.unlink(missing_ok=True)
                raise
        ds.config = {**ds.config, **config}      # keep source-specific entries (e.g. synth classes_all)
        ds.report.update(summarize(ds))
        try:
            ds.save(path, signals_file=signals_file)
        finally:
            if signals_file is not None:
                signals_file.unlink(missing_ok=True)
        write_folds_csv(path / "folds.csv", ds.record_ids, ds.patient_ids, ds.folds)
    return path


def load(name: str, root: str | Path | None = None, task: str | None = None, fs: int = 100,
         **kwargs: Any) -> ECGDataset:
    """The one data API: prepare once (cached by config), then open memory-mapped."""
    return ECGDataset.open(prepare(name, root=root, task=task, fs=fs, **kwargs))


def format_report(report: dict[str, Any]) -> str:
    """Human-readable data report for the CLI and `make demo`."""
    lines = [f"data report: {report['dataset']} / task={report['task']} / fs={report['fs']} Hz",
             f"  records listed {report.get('records_listed', report['n_records'])}, "
             f"kept {report['n_records']} ({report['n_patients']} patients)",
             f"  dropped by reason: {report.get('dropped_by_reason') or 'none'}",
             f"  label codes ignored (not a class of the task): {report.get('unknown_codes') or 'none'}",
             f"  length fix: {report.get('length_fix', 'n/a')}; "
             f"records with flat leads: {len(report.get('flat_lead_records', []))}, "
             f"with absent (zero-filled) leads: {len(report.get('absent_lead_records', []))}",
             "  per split: " + ", ".join(f"{s} {report['n_per_split'][s]}" for s in SPLITS),
             "  class counts per split:",
             "    " + "class".ljust(10) + "".join(s.rjust(8) for s in SPLITS)]
    for c in report["classes"]:
        lines.append("    " + str(c).ljust(10) + "".join(str(report["class_counts"][s][c]).rjust(8) for s in SPLITS))
    return "\n".join(lines)
