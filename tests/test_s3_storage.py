"""Issue 37: the cloud path for real. Sweeps with `--storage-path s3://beat-ray-test/sweeps` against a real
S3-protocol server on 127.0.0.1 (moto's, tests/s3server.py), reached the way a MinIO or Ceph user reaches
theirs: AWS_ENDPOINT_URL plus credentials in the environment of the driver and of every Ray process.

* An uninterrupted sweep: Tune's state, the stored grid, the published caches (copied by the trials'
  node, whose cache starts empty) and at most CHECKPOINTS_KEPT checkpoints per trial, by listing the bucket.
* A lost head: SIGKILL the driver (and the Ray it started) after some trials finished, delete the
  results folder and every local cache, rerun. The finished trials' rows and prediction files come
  back from the bucket without training; the rest train. On the way the store goes down in the middle
  of an upload (Tune's state, as it happens): the driver stops, naming the endpoint, and the resume
  never uses what was cut.
  The end result equals the uninterrupted sweep's, metric for metric and prediction for prediction,
  and so does the report built from it. A resume with a changed grid is refused on the same endpoint.
* A cache publish cut in the middle of its completeness marker: nobody copies that cache.

Every Ray instance here is the driver's own local one (its own temp dir, token auth on with a token of
the test's own, never ~/.ray/auth_token), so killing the driver really loses the head.
"""
from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pytest
from procs import kill_pids, load_presets, marked_pids, private_ray
from s3server import S3Server

from beat_ray.train.storage import PROVENANCE_DIR, stored_trial_status
from beat_ray.train.tune_fn import CHECKPOINTS_KEPT

REPO = Path(__file__).resolve().parents[1]
BUCKET = "beat-ray-test"
STORAGE = f"s3://{BUCKET}/sweeps"
# BEAT-Net only (a dataset cache and a token cache): 2 label fractions x 2 seeds = 4 trials. Three epochs
# leave three checkpoints per trial, so keeping CHECKPOINTS_KEPT = 2 is visible in the bucket.
SET = {"n_records": 300, "epochs": 3}
# columns that say when, where, by which command and as which trial a row was made, not what the trial measured
VOLATILE = {"trial_id", "finished_at", "hostname", "command", "timestamp", "date", "time_this_iter_s", "time_total_s",
            "time_since_restore", "iterations_since_restore", "pid", "node_ip", "train_node_id", "train_seconds",
            "storage_bytes", "predictions_file", "done", "data_origin", "experiment_tag", "checkpoint_dir_name"}

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def s3():
    """The server, and its endpoint and credentials in this process too (the checks read the bucket)."""
    server = S3Server()
    server.start()
    server.create_bucket(BUCKET)
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())
    yield server
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def auth_token(tmp_path_factory) -> Path:
    """A token file of this module's own: the drivers' local Ray runs with token auth on, as Ray 2.60 starts it."""
    path = tmp_path_factory.mktemp("auth") / "auth_token"
    path.write_text(secrets.token_hex(16))
    path.chmod(0o600)
    return path


class Run:
    """One study command against the bucket, with a private Ray and caches of its own."""

    def __init__(self, s3: S3Server, token: Path, root: Path, name: str, tag: str) -> None:
        self.root, self.name = root, name
        self.results, self.cache, self.node_cache = root / "results", root / "driver_cache", root / "node_cache"
        self.ray_tmp, self.marker, env = private_ray(tag, self.cache)
        self.env = {**env, **s3.env(), "BEAT_RAY_TRIAL_CACHE": str(self.node_cache),
                    "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}

    @property
    def out(self) -> Path:
        return self.results / "data_efficiency" / "smoke"

    def cmd(self, *extra: str) -> list[str]:
        return [sys.executable, "experiments/data_efficiency.py", "--preset", "smoke", "--models", "beatnet",
                "--name", self.name, "--storage-path", STORAGE, "--results-root", str(self.results),
                *[a for k, v in SET.items() for a in ("--set", f"{k}={v}")], *extra]

    def run(self, *extra: str, timeout: int = 300) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(self.cmd(*extra), cwd=REPO, env=self.env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        finally:
            self.reap()

    def rows(self) -> pd.DataFrame:
        path = self.out / "trials.parquet"
        try:
            return pd.read_parquet(path) if path.exists() else pd.DataFrame()
        except (OSError, ValueError):
            return pd.DataFrame()

    def reap(self) -> None:
        """End what the driver's own Ray left (it fate-shares with the driver; starting workers linger)."""
        kill_pids(marked_pids(self.marker))

    def close(self) -> None:
        kill_pids(marked_pids(self.marker))
        shutil.rmtree(self.ray_tmp, ignore_errors=True)


def _objects(s3: S3Server, name: str) -> dict[str, tuple[str, str]]:
    """key -> (ETag, LastModified) of a sweep's objects: a rewrite changes the second, new content both."""
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"sweeps/{name}/")
    return {o["Key"]: (o["ETag"], str(o["LastModified"])) for page in pages for o in page.get("Contents", [])}


def _checkpoint_objects(s3: S3Server, name: str, trial_ids) -> dict[str, tuple[str, str]]:
    """The trials' checkpoint objects: training a trial again would add or rewrite some."""
    return {k: v for k, v in _objects(s3, name).items()
            if "/checkpoint_" in k and any(f"/trainable_{t}_" in k for t in trial_ids)}


def _kept_checkpoints(keys, trial_id: str) -> set[str]:
    """The checkpoint numbers ('000001', ...) of one trial among the bucket's keys."""
    return {k.split("/checkpoint_")[1].split("/")[0] for k in keys if f"/trainable_{trial_id}_" in k and "/checkpoint_" in k}


def _grid(overrides: dict) -> list[dict]:
    """The cells run_study stores for this module's command with these --set values."""
    from beat_ray.train.config import TrialConfig
    cells = [c for c in load_presets("data_efficiency")["smoke"].cells() if c["model"] == "beatnet"]
    return [TrialConfig.from_dict({**c, **overrides, "study": "data_efficiency", "preset": "smoke"}).to_dict()
            for c in cells]


def _summary(results_dir: Path) -> str:
    """`python -m beat_ray.report --summary DIR`, its folder's name taken out."""
    from beat_ray.report.__main__ import main
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["--summary", str(results_dir)]) == 0
    return buf.getvalue().replace(str(results_dir), "DIR")


def _figures(results: Path, out: Path) -> dict[str, bytes]:
    """What `make figures` (beat_ray.report --all) writes for these results, file by file: its own code, with the
    smoke preset, which it skips as plumbing, let through."""
    from beat_ray.data.sources import default_realdata
    from beat_ray.report import build
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build, "SKIP_PRESETS", ())
        built = build.run_all(results, out, default_realdata())
    assert list(built) == ["smoke"] and any(f.endswith(".md") for f in built["smoke"]), built
    return {str(f.relative_to(out)): f.read_bytes() for f in sorted(out.rglob("*")) if f.is_file()}


def _same_results(got: pd.DataFrame, got_dir: Path, want: pd.DataFrame, want_dir: Path) -> list[str]:
    """Every non-volatile column and every prediction array equal, cell by cell (matched on config_hash)."""
    got, want = got.set_index("config_hash").sort_index(), want.set_index("config_hash").sort_index()
    assert list(got.index) == list(want.index)
    cols = sorted(c for c in want.columns if c not in VOLATILE)
    assert set(cols) <= set(got.columns)
    pd.testing.assert_frame_equal(got[cols], want[cols], check_exact=True)
    for h in want.index:
        with np.load(got_dir / got.loc[h, "predictions_file"]) as a, np.load(want_dir / want.loc[h, "predictions_file"]) as b:
            assert sorted(a.files) == sorted(b.files)
            for k in b.files:
                np.testing.assert_array_equal(a[k], b[k])
    return cols


@pytest.fixture(scope="module")
def baseline(s3, auth_token, tmp_path_factory):
    """The uninterrupted sweep: the reference for the lost-head test, and the first to publish the caches."""
    run = Run(s3, auth_token, tmp_path_factory.mktemp("base"), "base", "s3base")
    try:
        proc = run.run()
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        yield run, proc
    finally:
        run.close()


def test_uninterrupted_sweep_keeps_state_caches_and_two_checkpoints_in_the_bucket(s3, baseline):
    run, proc = baseline
    rows = run.rows()
    assert len(rows) == 4 and rows["trial_id"].is_unique and (rows["epoch"] == SET["epochs"]).all()
    keys = s3.keys(BUCKET, "sweeps/")
    assert "sweeps/base/beat_ray_grid.json" in keys
    assert any(k.startswith("sweeps/base/experiment_state-") for k in keys)
    assert set(stored_trial_status(f"{STORAGE}/base").values()) == {"TERMINATED"}
    # retention, as the bucket holds it: the last CHECKPOINTS_KEPT of each trial's 3 checkpoints
    for tid in rows["trial_id"]:
        ckpts = _kept_checkpoints(keys, tid)
        assert ckpts == {"000001", "000002"}, (tid, ckpts)
        assert CHECKPOINTS_KEPT == len(ckpts)
        assert f"sweeps/base/{PROVENANCE_DIR}/{tid}.json" in keys
    # the driver prepared and published; the trials' node (empty cache) copied once, then read its copy
    assert f"published to {STORAGE}/_beat_ray_cache" in proc.stdout
    published = sorted({k.split("/")[2] for k in keys if k.startswith("sweeps/_beat_ray_cache/")} - {""})
    assert len(published) == 1 and f"sweeps/_beat_ray_cache/{published[0]}/meta.json" in keys
    assert any("/tokens-" in k and k.endswith("/meta.json") for k in keys)     # the token cache went with it
    origins = sorted(rows["data_origin"])
    assert origins[0].startswith(f"copied from {STORAGE}/_beat_ray_cache/{published[0]}"), origins
    assert all(o.startswith(f"local cache {run.node_cache}") for o in origins[1:]), origins
    assert (run.node_cache / published[0] / "meta.json").is_file()
    print(f"\nbucket after the uninterrupted sweep: {len(keys)} objects; data origins {origins}")


def test_lost_head_rebuilds_from_the_bucket_and_a_cut_upload_is_never_trusted(s3, auth_token, baseline, tmp_path):
    base, _ = baseline
    run = Run(s3, auth_token, tmp_path, "lost", "s3lost")
    t0, took = time.monotonic(), {}
    try:
        # (1) the sweep, one trial at a time; SIGKILL the driver and its Ray once two trials have rows
        with open(tmp_path / "run1.log", "w") as log:
            first = subprocess.Popen(run.cmd("--max-concurrent-trials", "1"), cwd=REPO, env=run.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + 300
            while len(run.rows()) < 2:
                assert first.poll() is None, (tmp_path / "run1.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "two trials did not finish in 300 s"
                time.sleep(0.2)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        run.reap()
        took["run until killed"] = time.monotonic() - t0
        before = run.rows()
        finished = sorted(before["trial_id"])
        assert 2 <= len(before) < 4, "the kill must land mid-sweep"
        # a row exists only once the bucket's own Tune state has its trial finished: what a new head restores
        stored = stored_trial_status(f"{STORAGE}/lost")
        assert all(stored[t] == "TERMINATED" for t in finished), stored
        ckpts = _checkpoint_objects(s3, "lost", finished)
        assert ckpts

        # a resume whose grid changed is refused, reading the stored grid from this endpoint (run_study's
        # own check, in this process: the command-line path is tests/test_ray_resume.py's)
        from beat_ray.train.runner import check_grid
        with pytest.raises(SystemExit, match=r"another grid \(epochs: 3 -> 4\)"):
            check_grid(f"{STORAGE}/lost", _grid({**SET, "epochs": 4}), resume_changed=False)
        check_grid(f"{STORAGE}/lost", _grid(SET), resume_changed=False)          # the same grid resumes

        # (2) the lost head: its results folder and every local cache are gone (a copy is kept to compare)
        shutil.copytree(run.out, tmp_path / "before")
        for d in (run.results, run.cache, run.node_cache):
            shutil.rmtree(d, ignore_errors=True)

        # (3) rerun; the store goes down in the middle of this launch's first upload of Tune's experiment state
        # or of a checkpoint (in practice the state: Tune saves it as the sweep starts), leaving it unanswered
        stored_before_cut = _objects(s3, "lost")
        s3.cut_at(lambda method, path: method == "PUT" and path.startswith(f"/{BUCKET}/sweeps/lost/")
                  and ("/experiment_state-" in path or "/checkpoint_" in path))
        t = time.monotonic()
        cut = run.run("--max-concurrent-trials", "1")
        took["rebuild, then cut"] = time.monotonic() - t
        assert s3.cut_request is not None, cut.stdout[-3000:] + cut.stderr[-3000:]
        assert cut.returncode != 0
        last = cut.stderr.strip().splitlines()[-1]
        assert last.startswith(f"storage {STORAGE}/lost does not answer at {s3.endpoint} ($AWS_ENDPOINT_URL)"), last
        assert "Rerun the same command" in last
        # before it went down: the finished trials' rows and predictions came back without training, each with
        # the provenance it was first written with; the caches came from the bucket, not from a new preparation.
        # (A trial that finished in the bucket's state but had no row yet when the driver died comes back too.)
        rebuilt = run.rows()
        assert set(finished) <= set(rebuilt["trial_id"]) and len(rebuilt) < 4
        assert f"resume: {len(rebuilt)} finished trial(s) had no row" in cut.stdout
        assert "beat-ray: dataset cache copied from " + STORAGE in cut.stdout
        cols = _same_results(rebuilt[rebuilt["trial_id"].isin(finished)], run.out, before, tmp_path / "before")
        b, r = before.set_index("trial_id").sort_index(), rebuilt.set_index("trial_id").loc[finished]
        for col in ("finished_at", "hostname", "command", "git_commit", "git_dirty", "timestamp", "time_total_s"):
            assert list(r[col]) == list(b[col]), col
        assert all((run.out / f).is_file() for f in rebuilt["predictions_file"])

        # the cut upload changed nothing: no object where there was none, the old one where it overwrote (say a
        # trial that trained its last epoch before the kill, but was not yet finished in the stored state)
        s3.start()
        cut_key = unquote(urlsplit(s3.cut_request.split(" ", 1)[1]).path).removeprefix(f"/{BUCKET}/")
        assert _objects(s3, "lost").get(cut_key) == stored_before_cut.get(cut_key)

        # (4) rerun with the store back: the rest train, the finished ones are not touched
        t = time.monotonic()
        again = run.run()                   # both left at once: run_study caps nothing, 2 CPUs hold 2 trials
        took["final resume"] = time.monotonic() - t
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        restored_from = again.stderr.split("Restoring the run from the latest experiment state file: ")[1].split()[0]
        # resume trusts only a state file that was whole before the cut: another one, or the very key the cut
        # PUT tried to overwrite (a launch in the same second as the last one names its file alike), whose old
        # object stands untouched (checked above)
        assert f"sweeps/lost/{restored_from}" in stored_before_cut
        assert restored_from != cut_key.rsplit("/", 1)[1] or cut_key in stored_before_cut
        after = run.rows()
        assert len(after) == 4 and after["trial_id"].is_unique
        from ray.tune import ExperimentAnalysis
        ea = ExperimentAnalysis(f"{STORAGE}/lost")
        assert sorted(t.trial_id for t in ea.trials) == sorted(after["trial_id"])
        assert all(t.status == "TERMINATED" for t in ea.trials)
        assert _checkpoint_objects(s3, "lost", finished) == ckpts
        kept = after.set_index("trial_id").loc[finished]
        assert list(kept["finished_at"]) == list(b["finished_at"])
        resumed = after[after["iterations_since_restore"] < after["training_iteration"]]

        # (5) equal to the uninterrupted sweep, digit for digit, and so is its report
        _same_results(after, run.out, base.rows(), base.out)
        t = time.monotonic()
        assert _summary(run.out) == _summary(base.out)
        took["two summaries"] = time.monotonic() - t
        t = time.monotonic()
        figs = _figures(run.results, tmp_path / "figures_lost")
        want = _figures(base.results, tmp_path / "figures_base")
        assert sorted(figs) == sorted(want)
        # the READMEs' launch tables name each sweep's own command (its --name and folders): apart from those
        # rows, byte for byte, tables, PNGs and PDFs
        launches = {k: [ln for ln in v.decode().splitlines() if "`python " in ln] for k, v in
                    (("lost", figs["smoke/README.md"]), ("base", want["smoke/README.md"]))}
        assert launches["lost"] and launches["base"] and launches["lost"] != launches["base"]
        for d in (figs, want):
            d["smoke/README.md"] = "\n".join(ln for ln in d["smoke/README.md"].decode().splitlines()
                                             if "`python " not in ln).encode()
        assert [k for k in want if figs[k] != want[k]] == []
        took["make figures twice"] = time.monotonic() - t
        # retention after the lost head: still the last CHECKPOINTS_KEPT of every trial's checkpoints
        keys = s3.keys(BUCKET, "sweeps/lost/")
        for tid in after["trial_id"]:
            assert len(_kept_checkpoints(keys, tid)) == CHECKPOINTS_KEPT, (tid, _kept_checkpoints(keys, tid))
        print(f"\nrows: {len(before)} before the kill, {len(rebuilt)} after the rebuild, {len(after)} at the end; "
              f"{len(resumed)} trial(s) continued from a checkpoint; {len(cols)} columns and every prediction array "
              f"equal to the uninterrupted sweep, and {len(figs)} figure files byte for byte; cut upload: {cut_key}; wall s: "
              + ", ".join(f"{k} {v:.0f}" for k, v in took.items()))
    finally:
        if not s3.running:
            s3.start()
        run.close()


def test_a_cache_whose_publish_was_cut_is_never_copied(s3, tmp_path):
    """A published cache is complete once its own meta.json exists, so that file goes last: a publish cut
    in the middle of it leaves a cache nobody copies, and the next publish completes it."""
    from beat_ray.data.cachesync import fetch, is_published, publish
    cache = tmp_path / "synth-all-100hz-0123456789ab"
    (cache / "tokens-0123").mkdir(parents=True)
    np.save(cache / "signals.npy", np.arange(12.0))
    (cache / "tokens-0123" / "tokens.npy").write_bytes(b"t" * 100)
    (cache / "tokens-0123" / "meta.json").write_text("{}")
    (cache / "meta.json").write_text('{"n_records": 12}')
    dest = f"s3://{BUCKET}/cut-cache/_beat_ray_cache"
    s3.cut_at(lambda method, path: method == "PUT" and urlsplit(path).path.endswith(f"/{cache.name}/meta.json"))
    try:
        with pytest.raises(OSError):
            publish(cache, dest)
    finally:
        s3.start()
    keys = s3.keys(BUCKET, "cut-cache/")
    assert any(k.endswith("/tokens-0123/meta.json") for k in keys)          # everything else went first
    assert f"cut-cache/_beat_ray_cache/{cache.name}/meta.json" not in keys
    node = tmp_path / "node" / cache.name
    node.parent.mkdir()
    assert not is_published(cache.name, dest) and fetch(node, dest) is None and not node.exists()
    assert publish(cache, dest) and fetch(node, dest) is not None
    assert (node / "meta.json").read_text() == '{"n_records": 12}'
    assert np.array_equal(np.load(node / "signals.npy"), np.arange(12.0))


def test_messages_name_the_endpoint(monkeypatch):
    from beat_ray.train.storage import endpoint
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio.example:9000")
    assert endpoint("s3://b/p") == "http://minio.example:9000 ($AWS_ENDPOINT_URL)"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://ceph.example:7480")      # the SDKs' more specific one wins
    assert endpoint("s3://b/p") == "http://ceph.example:7480 ($AWS_ENDPOINT_URL_S3)"
    assert endpoint("s3://b/p?endpoint_override=http%3A%2F%2Fx%3A1") == "http://x:1 (endpoint_override in the URI)"
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert endpoint("s3://b/p").startswith("AWS S3's own endpoint")
    assert endpoint("/mnt/nfs/sweeps") == "the local file system"
