"""Prepare a dataset once per cluster: the driver publishes its caches, each node copies them once.

Why: the driver prepares every dataset and token cache before a sweep starts (runner.prepare_inputs),
but on a cluster it runs on the head, where no trial runs. Each fresh (spot) node then prepared
PTB-XL again inside its first trial, plus the token caches, while that node's other trials waited on
the lock. Now the driver publishes each finished cache dir to shared storage (the sweep's own
`storage_path/_beat_ray_cache/`, S3 or GCS included), and `prepare` on a node that lacks a cache
copies it from there to its local `$BEAT_RAY_CACHE`, under the same per-node lock that guards
building it. A new head (the old one lost its disk) copies them the same way instead of preparing again.

Object stores have no rename and no directories, and an upload can stop halfway, so completeness is a
marker: the cache dir's own `meta.json` is uploaded strictly last (after every data file and after the
`meta.json` of each token cache inside it), and only a cache whose top `meta.json` exists is copied. A
publish cut short leaves no top `meta.json`: nobody copies it, and the next publish uploads it again.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

SOURCE_ENV = "BEAT_RAY_CACHE_SOURCE"        # where trials look for published caches
PUBLISHED_DIR = "_beat_ray_cache"
CHUNK = 1 << 24                              # bytes per read while copying a cache file


def _fs(uri: str):
    import pyarrow.fs as pafs
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), str(Path(uri).resolve())


def published_location(storage_path: str) -> str:
    return f"{storage_path.rstrip('/')}/{PUBLISHED_DIR}"


def is_published(name: str, source: str) -> bool:
    import pyarrow.fs as pafs
    fs, base = _fs(source)
    return fs.get_file_info(f"{base}/{name}/meta.json").type == pafs.FileType.File


def publish(cache: Path, dest: str) -> bool:
    """Upload one cache dir to `dest/<name>/`, its top meta.json (the completeness marker) last; False if it
    was there already."""
    fs, base = _fs(dest)
    cache = Path(cache)
    if is_published(cache.name, dest):
        return False
    files = sorted((p for p in cache.rglob("*") if p.is_file()),
                   key=lambda p: (p == cache / "meta.json", p.name == "meta.json", str(p)))
    for p in files:
        target = f"{base}/{cache.name}/{p.relative_to(cache).as_posix()}"
        fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        with open(p, "rb") as src, fs.open_output_stream(target) as out:
            shutil.copyfileobj(src, out, CHUNK)
    return True


def fetch(path: Path, source: str) -> float | None:
    """Copy `source/<path.name>/` to `path` if it holds a complete cache; seconds taken, or None.
    The caller holds the node's lock for `path`."""
    import pyarrow.fs as pafs
    if not is_published(path.name, source):
        return None
    t0 = time.perf_counter()
    fs, base = _fs(source)
    tmp = path.parent / f".{path.name}.fetch-{uuid.uuid4().hex[:8]}"
    root = f"{base}/{path.name}"
    try:
        for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
            if info.type != pafs.FileType.File:
                continue
            target = tmp / info.path[len(root) + 1:]
            target.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(info.path) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return time.perf_counter() - t0
