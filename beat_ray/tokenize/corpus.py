"""`tokenize` (in memory), `tokenize_corpus` (process pool, writes .npy memmaps) and the
token cache `load_or_tokenize`.

Why memmaps: PTB-XL at 100 Hz with B=32, W=70 is 21,799 x 32 x 12 x 70 float32 = 2.3 GB of
tokens. Workers write their slices straight into the .npy files of a temp dir (no pickling of
results through pipes), the dir is renamed into place atomically, and every Ray trial on the
node maps the same pages read-only.

Downstream contract: a record with a non-empty `flags[i]` has no tokens (beat_mask all
False, r_peaks -1, n_beats 0) and MUST be dropped before training or evaluation; the flag
text "<key>: <detail>" says why (key in: too_short, non_finite, flat, clipping, no_beats,
too_few_beats, implausible_rate).
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from beat_ray.tokenize.detect import check_fs, detect_clean
from beat_ray.tokenize.layout import TokenizerConfig, Tokens
from beat_ray.tokenize.windows import anchors, beat_table, gather

DEFAULT_CONFIG = TokenizerConfig()
VERSION = 4          # bump when detection or windowing changes: it invalidates every cache (2: search-back, fast-rhythm
                     # noise test; 3: artefact pruning, HF-band QRS vs T wave, regular-train quality gate; 4: pacing
                     # spikes blanked, refine's polarity on wide QS complexes)
# ... and since the select detector changed three times without a bump (the tokens cached by its first version
# were reused by later runs), the key also carries a fingerprint of the code that decides the tokens.
TOKEN_CODE = ("corpus.py", "detect.py", "layout.py", "pace.py", "prune.py", "quality.py", "score.py", "select.py",
              "windows.py")
TOKEN_LIBS = ("neurokit2", "scipy", "numpy")        # select runs neurokit2's ecg_peaks; filters are scipy's
CHUNK = 256          # records per pool task unit (and the pool's minimum corpus size)
CHUNK_SAMPLES = 2_000_000   # samples per in-process batch: keeps the temporaries cache-sized
ARRAYS = ("tokens", "beat_mask", "rr", "times", "r_peaks", "n_beats", "lead_mask")


def _check(signals: np.ndarray, fs: float, config: TokenizerConfig) -> float:
    if np.ndim(signals) != 3:
        raise ValueError(f"signals must be (N, 12, T), got shape {np.shape(signals)}")
    fs = check_fs(fs)
    if config.mode not in ("fixed", "adaptive", "patch"):
        raise ValueError(f"unknown tokenizer mode {config.mode!r}")
    if config.detector not in ("consensus", "select"):
        raise ValueError(f"unknown detector {config.detector!r}; known: consensus, select")
    if config.max_beats < 1 or config.window(fs) < 1:
        raise ValueError(f"empty token layout: max_beats={config.max_beats}, W={config.window(fs)}")
    return fs


def _tokenize_into(signals: np.ndarray, fs: float, config: TokenizerConfig,
                   out: dict[str, np.ndarray], start: int, stop: int) -> None:
    """Tokenize records [start, stop) in chunks, writing into the arrays of `out`."""
    step = max(8, CHUNK_SAMPLES // max(1, 12 * np.shape(signals)[-1]))
    for a in range(start, stop, step):
        b = min(a + step, stop)
        x = np.asarray(signals[a:b], np.float32)
        peaks, flags, usable, xs = detect_clean(x, fs, config.detector == "select")
        table = beat_table(anchors(peaks, flags, x.shape[-1], fs, config), x.shape[-1], fs, config)
        # out arrays are fresh zeros (np.zeros or a new .npy): write only the real samples
        gather(xs, table, fs, config, out=out["tokens"][a:b], finite=True, zeroed=True)
        for k in ("beat_mask", "rr", "times", "r_peaks", "n_beats"):
            out[k][a:b] = table[k]
        out["lead_mask"][a:b] = usable
        out["flags"][a:b] = flags


def _empty(n: int, fs: float, config: TokenizerConfig) -> dict[str, np.ndarray]:
    b, w = config.max_beats, config.window(fs)
    return {"tokens": np.zeros((n, b, 12, w), np.float32),
            "beat_mask": np.zeros((n, b), bool), "rr": np.zeros((n, b, 2), np.float32),
            "times": np.zeros((n, b), np.float32), "r_peaks": np.full((n, b), -1, np.int64),
            "n_beats": np.zeros(n, np.int64), "lead_mask": np.zeros((n, 12), bool),
            "flags": np.empty(n, object)}


def _as_tokens(arrays: dict[str, np.ndarray], fs: float, config: TokenizerConfig) -> Tokens:
    return Tokens(config=config, fs=fs, **arrays)


def tokenize(signals: np.ndarray, fs: float, config: TokenizerConfig = DEFAULT_CONFIG,
             n_jobs: int = 1) -> Tokens:
    """(N, 12, T) signals at fs -> Tokens in memory. n_jobs > 1 uses `tokenize_corpus`."""
    fs = _check(signals, fs, config)
    if signals.shape[1] != 12:
        raise ValueError(f"signals must have the 12 standard leads on axis 1, got {signals.shape}")
    if n_jobs > 1 and len(signals) > CHUNK:
        return tokenize_corpus(signals, fs, config, n_jobs=n_jobs)
    out = _empty(len(signals), fs, config)
    _tokenize_into(signals, fs, config, out, 0, len(signals))
    return _as_tokens(out, fs, config)


# ------------------------------------------------------------------ corpus (process pool)
_JOB: dict = {}      # set in the parent before fork; workers inherit the signals by reference


def _worker(path: str, start: int, stop: int) -> list[str]:
    sig, fs, config = _JOB["signals"], _JOB["fs"], _JOB["config"]
    out = {k: np.load(Path(path) / f"{k}.npy", mmap_mode="r+") for k in ARRAYS}
    out["flags"] = np.empty(len(sig), object)
    _tokenize_into(sig, fs, config, out, start, stop)
    for k in ARRAYS:
        out[k].flush()
    return list(out["flags"][start:stop])


def _write_npys(path: Path, signals: np.ndarray, fs: float, config: TokenizerConfig,
                n_jobs: int) -> None:
    """Create the .npy files under `path` and fill them, in-process or with a fork pool."""
    n, b, w = len(signals), config.max_beats, config.window(fs)
    specs = {"tokens": ((n, b, 12, w), np.float32), "beat_mask": ((n, b), bool),
             "rr": ((n, b, 2), np.float32), "times": ((n, b), np.float32),
             "r_peaks": ((n, b), np.int64), "n_beats": ((n,), np.int64), "lead_mask": ((n, 12), bool)}
    for k, (shape, dtype) in specs.items():
        open_memmap(path / f"{k}.npy", mode="w+", dtype=dtype, shape=shape).flush()
    flags: list[str] = []
    if n_jobs <= 1 or n <= CHUNK or "fork" not in mp.get_all_start_methods():
        out = {k: np.load(path / f"{k}.npy", mmap_mode="r+") for k in ARRAYS}
        out["flags"] = np.empty(n, object)
        _tokenize_into(signals, fs, config, out, 0, n)
        for k in ARRAYS:
            out[k].flush()
        flags = list(out["flags"])
    else:
        _JOB.update(signals=signals, fs=fs, config=config)
        step = max(CHUNK, -(-n // (4 * n_jobs)) // CHUNK * CHUNK)   # ~4 tasks per worker
        bounds = [(a, min(a + step, n)) for a in range(0, n, step)]
        try:
            with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("fork")) as ex:
                for part in ex.map(_worker, [str(path)] * len(bounds), *zip(*bounds)):
                    flags.extend(part)
        finally:
            _JOB.clear()
    meta = {"version": VERSION, "fs": fs, "config": config.to_dict(), "n": n,
            "n_samples": int(signals.shape[-1])}
    (path / "flags.json").write_text(json.dumps(flags))
    (path / "meta.json").write_text(json.dumps(meta, indent=1))


def _load(path: Path, mmap: bool = True) -> Tokens:
    meta = json.loads((path / "meta.json").read_text())
    arrays = {k: np.load(path / f"{k}.npy", mmap_mode="r" if mmap else None) for k in ARRAYS}
    arrays["flags"] = np.asarray(json.loads((path / "flags.json").read_text()), dtype=object)
    return _as_tokens(arrays, float(meta["fs"]), TokenizerConfig(**meta["config"]))


def tokenize_corpus(signals: np.ndarray, fs: float, config: TokenizerConfig = DEFAULT_CONFIG,
                    n_jobs: int = 2, out_dir: str | Path | None = None) -> Tokens:
    """Tokenize a big corpus with a fork process pool; signals may be a read-only memmap.

    With out_dir the result is written there atomically (temp dir + rename) and returned
    memory-mapped; without it a temp dir is used and the arrays are loaded into memory.
    """
    fs = _check(signals, fs, config)
    final = Path(out_dir) if out_dir is not None else None
    parent = final.parent if final is not None else Path(os.environ.get("TMPDIR", "/tmp"))
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".tokens-tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        _write_npys(tmp, signals, fs, config, n_jobs)
        if final is None:
            return _load(tmp, mmap=False)
        try:
            os.replace(tmp, final)
        except OSError:      # another process won the race: its result is identical, keep it
            if not (final / "meta.json").exists():
                raise
        return _load(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------ cache
@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 of the tokenizer modules that decide the tokens (TOKEN_CODE) and the versions of TOKEN_LIBS.

    Why: VERSION is bumped by hand, and was not when tokenize/select.py changed, so a rerun after a detector
    fix silently trained on the old detector's cached tokens. Any edit to these files (a docstring too)
    now re-tokenises, which costs seconds to minutes, never a wrong result."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in TOKEN_CODE:
        h.update(name.encode() + b"\0" + (here / name).read_bytes())
    for lib in TOKEN_LIBS:
        try:
            h.update(f"{lib}=={metadata.version(lib)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{lib} absent".encode())
    return h.hexdigest()[:16]


def cache_key(signals: np.ndarray, fs: float, config: TokenizerConfig) -> str:
    """Hash of tokenizer version, code fingerprint, config, fs, shape and a strided sample of the signals.

    The dataset cache dir already names the dataset; the content sample catches a dataset
    rebuilt in place with other signals.
    """
    n = len(signals)
    rows = np.asarray(signals[:: max(1, n // 64)][:64, :, :: 97], np.float32)
    h = hashlib.sha256(json.dumps({"v": VERSION, "code": code_fingerprint(), "fs": float(fs), "cfg": config.to_dict(),
                                   "shape": list(np.shape(signals))}, sort_keys=True).encode())
    h.update(np.ascontiguousarray(np.nan_to_num(rows, nan=-9e9)).tobytes())
    return h.hexdigest()[:16]


def load_or_tokenize(cache_dir: str | Path, signals: np.ndarray, fs: float,
                     config: TokenizerConfig = DEFAULT_CONFIG, n_jobs: int = 1) -> Tokens:
    """Tokens from `cache_dir/tokens-<key>` if present, else tokenize and save there first."""
    fs = _check(signals, fs, config)
    path = Path(cache_dir) / f"tokens-{cache_key(signals, fs, config)}"
    if (path / "meta.json").exists():
        return _load(path)
    return tokenize_corpus(signals, fs, config, n_jobs=n_jobs, out_dir=path)


def token_report(tokens: Tokens) -> dict:
    """What a trainer must know before using tokens: how many records are flagged (and why) or cropped."""
    flags = [str(f) for f in tokens.flags]
    reasons: dict[str, int] = {}
    for f in flags:
        if f:
            key = f.split(":", 1)[0]
            reasons[key] = reasons.get(key, 0) + 1
    n_beats = np.asarray(tokens.n_beats)
    ok = np.array([not f for f in flags])
    return {"n_records": len(flags), "n_flagged": int((~ok).sum()), "flagged_by_reason": reasons,
            "n_cropped": tokens.n_cropped, "max_beats": tokens.config.max_beats,
            "beats_per_record": {"min": int(n_beats[ok].min()) if ok.any() else 0,
                                 "median": float(np.median(n_beats[ok])) if ok.any() else 0.0,
                                 "max": int(n_beats[ok].max()) if ok.any() else 0},
            "mode": tokens.config.mode, "window": tokens.config.window(tokens.fs)}


def tokens_for(dataset, config: TokenizerConfig = DEFAULT_CONFIG, n_jobs: int = 1) -> Tokens:
    """Tokens of a prepared `ECGDataset`, cached inside its own cache dir and reused by every trial."""
    if getattr(dataset, "path", None) is None:
        return tokenize(np.asarray(dataset.signals), dataset.fs, config)
    return load_or_tokenize(dataset.path, dataset.signals, dataset.fs, config, n_jobs=n_jobs)
