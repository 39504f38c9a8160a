"""The sweep's storage path as the driver sees it: where it points, whether it answers, and what the
runner keeps there beside Tune's own files.

Why: `--storage-path s3://...` holds Tune's experiment state and every trial's checkpoints, so a head
that lost its disk (and with it --results-root) rebuilds each finished trial's row from the final
metrics in Tune's state and its prediction file from the trial's last checkpoint (runner.reconcile;
tests/test_s3_storage.py checks the rebuilt rows against an uninterrupted run, digit for digit).
What neither holds is a row's provenance: the commit, host and time of the driver that wrote it. A
rebuild would stamp its own, which is wrong once the code moved on, so the runner writes those four
fields here, one small JSON object per row (`<experiment>/_beat_ray_rows/<trial_id>.json`). S3 has
no rename, but a PUT is all or nothing (an upload cut halfway leaves no object), so an object that
exists is complete: each record is its own "complete" marker. On a local path it is written to a
temporary name and renamed.

An S3-compatible store other than AWS (MinIO, Ceph RGW) is reached the way the AWS SDKs, pyarrow
and Ray all read it: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) plus the usual credentials, in
the environment of the driver and of every node (cluster/README.md).
"""
from __future__ import annotations

import fnmatch
import json
import os
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyarrow.fs as pafs

PROVENANCE_DIR = "_beat_ray_rows"
PROVENANCE_FIELDS = ("git_commit", "git_dirty", "finished_at", "hostname", "command")
# what the AWS SDKs and pyarrow read for a custom S3 endpoint, most specific first
ENDPOINT_VARS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
STATE_PATTERN = "experiment_state-*.json"           # Tune's experiment state (TuneController.CKPT_FILE_TMPL)


class StorageUnreachable(RuntimeError):
    """The storage path's endpoint does not answer; the message names it and says how to resume."""


def is_uri(path: str) -> bool:
    return "://" in path


def storage_fs(path: str) -> tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, path inside it) of a storage path: a URI (s3://, gs://, file://) or a local path."""
    if is_uri(path):
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), str(Path(path).resolve())


def endpoint(storage_path: str) -> str:
    """Where a storage path's requests go, in words, for messages that must name it."""
    scheme, _, _, query, _ = urlsplit(storage_path) if is_uri(storage_path) else ("file", "", "", "", "")
    if scheme == "s3":
        override = parse_qs(query).get("endpoint_override")
        if override:
            return f"{override[0]} (endpoint_override in the URI)"
        for var in ENDPOINT_VARS:
            if os.environ.get(var):
                return f"{os.environ[var]} (${var})"
        return "AWS S3's own endpoint (no AWS_ENDPOINT_URL set)"
    if scheme in ("gs", "gcs"):
        return "Google Cloud Storage"
    return "the local file system"


def unreachable(storage_path: str, exc: BaseException) -> StorageUnreachable:
    """The error a driver stops with when its storage does not answer: endpoint, cause, and what to do."""
    cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return StorageUnreachable(
        f"storage {storage_path} does not answer at {endpoint(storage_path)}: {cause}. The sweep stopped; its "
        "state is what the store last saved (a checkpoint or row whose upload was cut is not used). Rerun "
        "the same command (same --name and --storage-path) once the store answers: it resumes from there.")


def check_reachable(storage_path: str) -> None:
    """Raise `StorageUnreachable` if a URI storage path cannot be asked about (a local path is not checked)."""
    if not is_uri(storage_path):
        return
    try:
        fs, path = storage_fs(storage_path)
        fs.get_file_info(path)
    except OSError as exc:              # pyarrow's network and auth errors are OSErrors
        raise unreachable(storage_path, exc) from None


def stored_trial_status(exp_path: str) -> dict[str, str]:
    """trial_id -> status in the newest experiment state Tune saved to storage: what a restore starts from.

    Tune writes its state to the driver's disk, then uploads it in the background, so "saved" on the
    head is not yet "saved" in the bucket; the results writer waits for this one."""
    fs, path = storage_fs(exp_path)
    names = [i.base_name for i in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
             if i.type == pafs.FileType.File and fnmatch.fnmatch(i.base_name, STATE_PATTERN)]
    if not names:
        return {}
    with fs.open_input_stream(f"{path}/{max(names)}") as fh:       # Tune restores from max() too
        state = json.loads(fh.read())
    status = {}
    for trial_json, _ in state.get("trial_data", []):
        trial = json.loads(trial_json)
        status[trial["trial_id"]] = trial["status"]
    return status


def _put(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write one object whole or not at all: a single PUT on object stores, temp file + rename on disk."""
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        with fs.open_output_stream(tmp) as fh:
            fh.write(data)
        fs.move(tmp, path)
    else:
        with fs.open_output_stream(path) as fh:
            fh.write(data)


def save_provenance(exp_path: str, rows: list[dict]) -> None:
    """Keep each row's provenance beside the sweep, for a head that loses its results folder."""
    if not rows:
        return
    fs, path = storage_fs(exp_path)
    base = f"{path}/{PROVENANCE_DIR}"
    fs.create_dir(base, recursive=True)
    for row in rows:
        record = {"trial_id": row["trial_id"], **{k: row.get(k) for k in PROVENANCE_FIELDS}}
        _put(fs, f"{base}/{row['trial_id']}.json", json.dumps(record, default=str).encode())


def load_provenance(exp_path: str) -> dict[str, dict]:
    """trial_id -> the provenance record saved with its row (only whole objects exist)."""
    fs, path = storage_fs(exp_path)
    out = {}
    for info in fs.get_file_info(pafs.FileSelector(f"{path}/{PROVENANCE_DIR}", allow_not_found=True)):
        if info.type == pafs.FileType.File and info.base_name.endswith(".json"):
            with fs.open_input_stream(info.path) as fh:
                record = json.loads(fh.read())
            out[record["trial_id"]] = {k: record[k] for k in PROVENANCE_FIELDS if k in record}
    return out
