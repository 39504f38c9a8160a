"""The preparation step end to end on a PTB-XL tree in the real format, hostile records included:
exact drop reasons, length policy, folds, class counts, cache reuse and the CLI."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from formats import PTBXL_LEADS, write_wfdb

from beat_ray.data import ECGDataset, RecordError, load, prepare
from beat_ray.data.export import write_ptbxl

FS = 100
CLASSES = ["SR", "AFIB", "IMI", "LVH"]


def _dataset(n: int = 40, seed: int = 0) -> ECGDataset:
    rng = np.random.default_rng(seed)
    t = np.arange(10 * FS) / FS
    beat = np.exp(-((t % 0.8 - 0.4) ** 2) / (2 * 0.02 ** 2))
    sig = (rng.uniform(0.2, 1.5, (n, 12, 1)) * beat + 0.01 * rng.standard_normal((n, 12, len(t)))).astype(np.float32)
    labels = np.zeros((n, len(CLASSES)), np.uint8)
    labels[np.arange(n), np.arange(n) % 2] = 1                 # SR or AFIB
    labels[::3, 2] = 1                                         # IMI
    labels[::5, 3] = 1                                         # LVH
    return ECGDataset(name="toy", task="all", signals=sig, labels=labels, classes=CLASSES, fs=FS,
                      record_ids=np.array([str(i) for i in range(n)], object),
                      patient_ids=np.array([f"p{i // 2}" for i in range(n)], object),
                      folds=np.array([i % 10 + 1 for i in range(n)]))


@pytest.fixture()
def tree(tmp_path):
    """40 good records, then hostile ones appended to the same database CSV."""
    ds = _dataset()
    root = write_ptbxl(ds, tmp_path / "ptbxl")
    db = pd.read_csv(root / "ptbxl_database.csv")
    d = np.round(np.asarray(ds.signals[0]) * 1000).astype(np.int64)
    extra = {  # ecg_id: (digital signal (12, T), expected outcome)
        41: (d[:, :300], "too_short"),
        42: (d[:, :700], "padded"),
        43: (np.concatenate([d, d[:, :200]], axis=1), "cropped"),
        44: (np.where(np.arange(12)[:, None] == 4, 0, d), "flat_lead"),
        45: (np.zeros_like(d), "all_leads_flat"),
        46: (np.where((np.arange(1000) > 500) & (np.arange(1000) < 520), -32768, d), "nan_samples"),
    }
    rows = []
    for ecg_id, (sig, _) in extra.items():
        rel = f"records100/00000/{ecg_id:05d}_lr"
        write_wfdb(root / "records100" / "00000", f"{ecg_id:05d}_lr", PTBXL_LEADS, sig, FS)
        rows.append({"ecg_id": ecg_id, "patient_id": 9000.0 + ecg_id, "scp_codes": "{'SR': 0.0}",
                     "strat_fold": 1, "filename_lr": rel, "filename_hr": rel})
    rows.append({"ecg_id": 47, "patient_id": 9047.0, "scp_codes": "{'SR': 0.0}", "strat_fold": 2,
                 "filename_lr": "records100/00000/00047_lr", "filename_hr": "x"})      # no file on disk
    rows.append({"ecg_id": 48, "patient_id": 9048.0, "scp_codes": "{'NORM': 100.0}", "strat_fold": 2,
                 "filename_lr": "records100/00000/00001_lr", "filename_hr": "x"})      # no rhythm label
    pd.concat([db, pd.DataFrame(rows)]).to_csv(root / "ptbxl_database.csv", index=False)
    return ds, root


def test_prepare_ptbxl_tree_with_hostile_records(tree, tmp_path):
    ds, root = tree
    out = load("ptbxl", root=root, task="rhythm", fs=FS, cache_dir=tmp_path / "cache", progress=False)
    assert out.signals.shape == (43, 12, 1000) and out.signals.dtype == np.float32
    assert out.classes == ["AFIB", "SR"]
    kept = list(out.record_ids)
    assert kept == [str(i) for i in range(1, 41)] + ["42", "43", "44"]
    np.testing.assert_allclose(out.signals[:40], ds.signals, atol=6e-4)        # mV after 1/1000 digitisation
    assert np.all(out.signals[40][:, 700:] == 0) and np.any(out.signals[40][:, :700] != 0)
    rep = out.report
    assert {d["record_id"]: d["reason"] for d in rep["dropped"]} == {
        "41": "too_short", "45": "all_leads_flat", "46": "nan_samples", "47": "missing_file",
        "48": "no_label_in_task"}
    assert all("00041_lr" in d["detail"] for d in rep["dropped"] if d["record_id"] == "41")
    assert rep["length_fix"] == {"exact": 41, "padded": 1, "cropped": 1}
    assert rep["flat_lead_records"] == [{"record_id": "44", "flat_leads": [4]}]
    assert rep["records_listed"] == 48 and rep["records_kept"] == 43 and rep["fold_source"] == "dataset"
    # folds come from strat_fold; class counts per split are exact
    np.testing.assert_array_equal(out.folds[:40], ds.folds)
    train = out.split == "train"
    assert rep["class_counts"]["train"] == {"AFIB": int(ds.labels[ds.folds <= 8, 1].sum()),
                                            "SR": int(ds.labels[ds.folds <= 8, 0].sum()) + 3}
    assert rep["n_per_split"] == {"train": int(train.sum()), "val": 4, "test": 4}
    folds_csv = pd.read_csv(tmp_path / "cache" / next(p.name for p in (tmp_path / "cache").iterdir()
                                                      if p.is_dir()) / "folds.csv", dtype=str)
    assert list(folds_csv.columns) == ["record_id", "patient_id", "fold"] and len(folds_csv) == 43


def test_cache_is_reused_keyed_by_config_and_forced(tree, tmp_path):
    _, root = tree
    cache = tmp_path / "cache"
    p1 = prepare("ptbxl", root=root, task="rhythm", fs=FS, cache_dir=cache, progress=False)
    p2 = prepare("ptbxl", root=root, task="rhythm", fs=FS, cache_dir=cache, progress=False)
    assert p1 == p2
    p3 = prepare("ptbxl", root=root, task="rhythm", fs=500, cache_dir=cache, progress=False)
    assert p3 != p1 and ECGDataset.open(p3).signals.shape[-1] == 5000
    shutil.rmtree(root)                                   # the cache alone serves the same config
    assert ECGDataset.open(prepare("ptbxl", root=root, task="rhythm", fs=FS, cache_dir=cache)).signals.shape[0] == 43
    with pytest.raises(RecordError, match="dataset root does not exist"):
        prepare("ptbxl", root=root, task="rhythm", fs=FS, cache_dir=cache, force=True, progress=False)
    assert not [p for p in cache.iterdir() if ".tmp-" in p.name]     # no half-written cache left


def test_stratified_folds_when_dataset_has_none(tmp_path):
    from formats import write_challenge
    codes = ["426783006", "164889003", "270492004", "164909002", "59118001"]
    for i in range(60):
        write_challenge(tmp_path / "cpsc", f"A{i:04d}", codes[i % 5], n=5000, seed=i)
    out = load("cpsc2018", root=tmp_path / "cpsc", fs=FS, cache_dir=tmp_path / "cache", progress=False)
    assert out.report["fold_source"] == "stratified_group_kfold(seed=0)"
    assert sorted(set(out.folds)) == list(range(1, 11))
    cols = [out.classes.index(c) for c in ("NSR", "AF", "I-AVB", "LBBB", "RBBB")]
    per_fold = [out.labels[out.folds == k][:, cols].sum(0) for k in range(1, 11)]
    assert all(((c >= 1) & (c <= 2)).all() for c in per_fold)     # 12 records per class over 10 folds


def test_cli_prints_report_and_fails_cleanly(tree, tmp_path):
    _, root = tree
    cmd = [sys.executable, "-m", "beat_ray.data", "prepare", "--dataset", "ptbxl", "--root", str(root),
           "--task", "rhythm", "--fs", "100", "--cache-dir", str(tmp_path / "c"), "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    report = json.loads(res.stdout[:res.stdout.rindex("}") + 1])
    assert report["n_records"] == 43 and report["dropped_by_reason"]["missing_file"] == 1
    bad = subprocess.run(cmd[:6] + ["--root", str(tmp_path / "nope")] + cmd[8:], capture_output=True, text=True)
    assert bad.returncode == 2 and "nope: dataset root does not exist" in bad.stderr
    assert "Traceback" not in bad.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    res = subprocess.run(cmd[:6] + ["--root", str(empty)] + cmd[8:], capture_output=True, text=True)
    assert res.returncode == 2 and "ptbxl_database.csv" in res.stderr and "Traceback" not in res.stderr


def test_synth_through_cache_and_through_the_ptbxl_reader(tmp_path):
    """synth -> cache (extras survive) and synth -> PTB-XL tree -> PTB-XL reader: same labels, folds, mV."""
    from beat_ray.data.synth import CLASSES_ALL, SUPERDIAGNOSTIC
    syn = load("synth", task="superdiagnostic", n_records=120, cache_dir=tmp_path / "c", progress=False)
    assert syn.classes == list(SUPERDIAGNOSTIC) and syn.signals.shape == (120, 12, 1000)
    assert syn.report["n_records"] == 120 and syn.config["dataset"] == "synth"
    assert syn.extras["r_offsets"][-1] == len(syn.extras["r_peaks"]) > 120 * 5
    root = write_ptbxl(syn, tmp_path / "ptbxl", classes=list(CLASSES_ALL), labels=syn.extras["labels_all"])
    back = load("ptbxl", root=root, task="superdiagnostic", fs=100, cache_dir=tmp_path / "c", progress=False)
    order = [back.classes.index(c) for c in syn.classes]
    np.testing.assert_array_equal(back.labels[:, order], syn.labels)
    np.testing.assert_array_equal(back.folds, syn.folds)
    np.testing.assert_allclose(back.signals, syn.signals, atol=6e-4)
    assert len(set(back.patient_ids)) == len(set(syn.patient_ids))
