"""Issue G: one hostile-input corpus, in the real formats, through the path a user runs.

A CPSC2018 tree (PhysioNet-Challenge `.hea` + `.mat`, 500 Hz) of clean synth records plus one record
per kind of damage, and a PTB-XL tree (WFDB `.hea/.dat` + both CSVs) for the PTB-XL-only kinds.
Each kind gets its exact outcome asserted: a skip reason in the data report that names the file,
a masked-and-counted entry, or a clear error. Then a training run on the prepared corpus shows what
reaches the loop: finite inputs only, and the loop's guard raises on anything non-finite.

inf cannot be stored in format-16 WFDB or int16 Challenge `.mat` files (NaN can: -32768), so inf
is checked where arrays enter: `check_record` and the training loop's guard.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from formats import LEADS, PTBXL_LEADS, raises_record_error, write_challenge, write_wfdb

from beat_ray.data import ECGDataset, RecordError, load
from beat_ray.data.export import write_ptbxl
from beat_ray.data.prepare import check_record
from beat_ray.data.synth import SynthConfig, generate
from beat_ray.models import create
from beat_ray.tokenize import tokens_for
from beat_ray.train.config import TrialConfig
from beat_ray.train.inputs import build_inputs
from beat_ray.train.loop import NonFiniteError, fit

FS_IN = 500
NSR, AF, RBBB, LBBB = "426783006", "164889003", "59118001", "164909002"


def _clean(n: int, seed: int = 3) -> np.ndarray:
    """Real-looking 12-lead beats (synth, 10 s at 500 Hz) as Challenge int16 values (1000/mV)."""
    ds = generate(SynthConfig(n_records=n, fs=FS_IN, seed=seed, records_per_patient=1))
    return np.clip(np.round(np.asarray(ds.signals) * 1000), -32767, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def cpsc_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "cpsc2018"
    clean = _clean(40)
    dx_cycle = [NSR, AF, RBBB, LBBB, f"{NSR},{RBBB}"]
    for i in range(30):                                   # the good records
        write_challenge(root, f"A{i:04d}", dx_cycle[i % 5], val=clean[i], fs=FS_IN)
    v = clean[30:].copy()
    # truncated .mat: the header promises 10 s, the file ends early
    write_challenge(root, "A0101", NSR, val=v[0], fs=FS_IN)
    mat = root / "A0101.mat"
    mat.write_bytes(mat.read_bytes()[:-4000])
    # header whose sample count does not match the data
    write_challenge(root, "A0102", NSR, val=v[1], fs=FS_IN)
    hea = root / "A0102.hea"
    hea.write_text(hea.read_text().replace("A0102 12 500 5000", "A0102 12 500 6000", 1))
    # NaN samples inside a lead (-32768 is the WFDB/Challenge invalid-sample value)
    nan = v[2].copy()
    nan[6, 2000:2050] = -32768
    write_challenge(root, "A0103", NSR, val=nan, fs=FS_IN)
    # one flat lead (V3 disconnected): kept and counted
    flat = v[3].copy()
    flat[8] = 12
    write_challenge(root, "A0104", AF, val=flat, fs=FS_IN)
    # every lead flat
    write_challenge(root, "A0105", NSR, val=np.full_like(v[4], 7), fs=FS_IN)
    # 11 leads: V6 missing from header and data
    write_challenge(root, "A0106", NSR, val=v[5][:11], leads=list(LEADS[:11]), fs=FS_IN)
    # a 1-second record
    write_challenge(root, "A0107", NSR, val=v[6][:, :FS_IN], fs=FS_IN)
    # pure noise, no beats, with a perfectly valid header and label
    noise = np.random.default_rng(0).normal(0, 300, (12, 10 * FS_IN)).astype(np.int16)
    write_challenge(root, "A0108", NSR, val=noise, fs=FS_IN)
    # only an unknown SNOMED code; a known code beside an unknown one
    write_challenge(root, "A0109", "999999999", val=v[7], fs=FS_IN)
    write_challenge(root, "A0110", f"{NSR},10370003", val=v[8], fs=FS_IN)
    # Dx with a doubled and a trailing comma
    write_challenge(root, "A0111", f"{AF},,{RBBB},", val=v[9], fs=FS_IN)
    return root


def test_cpsc_corpus_report(cpsc_corpus, tmp_path):
    ds = load("cpsc2018", root=cpsc_corpus, task="all", fs=100, cache_dir=tmp_path / "cache", progress=False)
    rep = ds.report
    dropped = {d["record_id"]: d for d in rep["dropped"]}
    assert {k: d["reason"] for k, d in dropped.items()} == {
        "A0101": "header_data_mismatch", "A0102": "header_data_mismatch", "A0103": "nan_samples",
        "A0105": "all_leads_flat", "A0106": "missing_leads", "A0107": "too_short",
        "A0109": "no_label_in_task"}
    for rid, d in dropped.items():                     # every message names the file it is about
        assert rid in d["detail"], d
    assert "lead rows [6]" in dropped["A0103"]["detail"]
    assert "1.00 s" in dropped["A0107"]["detail"]
    assert rep["dropped_by_reason"] == {"header_data_mismatch": 2, "nan_samples": 1, "all_leads_flat": 1,
                                        "missing_leads": 1, "too_short": 1, "no_label_in_task": 1}
    assert rep["records_listed"] == 41 and rep["records_kept"] == 34 == len(ds)
    assert rep["flat_lead_records"] == [{"record_id": "A0104", "flat_leads": [8]}]
    assert rep["unknown_codes"] == {"10370003": 1, "999999999": 1}
    # kept records carry exactly the labels their Dx names, commas or not
    lab = {r: {c for c, y in zip(ds.classes, row) if y} for r, row in zip(ds.record_ids, ds.labels)}
    assert lab["A0111"] == {"AF", "RBBB"} and lab["A0110"] == {"NSR"} and lab["A0108"] == {"NSR"}
    assert np.isfinite(np.asarray(ds.signals)).all()
    # the no-beat record passes the format checks; the tokenizer flags it, and only it
    flags = dict(zip(ds.record_ids, tokens_for(ds).flags))
    assert {r for r, f in flags.items() if f} == {"A0108"}
    assert flags["A0108"].split(":")[0] in {"no_beats", "too_few_beats", "implausible_rate", "low_quality"}


def test_training_on_the_corpus_sees_only_finite_inputs(cpsc_corpus, beat_ray_cache):
    cfg = TrialConfig(dataset="cpsc2018", task="all", root=str(cpsc_corpus), fs=100, model="resnet1d_wang",
                      model_kwargs={"width": 8}, epochs=1, batch_size=8, threads=1)
    m = fit(cfg)
    # A0108 (no beats) stays in: a CNN trains on it; only tokens models fall back (tests/test_real_protocol.py)
    assert m["n_train"] + m["n_val"] + m["n_test"] == 34
    assert m["n_flagged_train_skipped"] == m["n_fallback_val"] == m["n_fallback_test"] == 0
    assert np.isfinite(m["train_loss"])


@pytest.mark.parametrize("model,key", [("resnet1d_wang", "signal"), ("beatnet", "tokens")])
def test_loop_guard_raises_on_non_finite_inputs(cpsc_corpus, beat_ray_cache, model, key):
    """Whatever slips past the data checks, a NaN/inf never reaches an optimizer step."""
    cfg = TrialConfig(dataset="cpsc2018", task="all", root=str(cpsc_corpus), fs=100, model=model,
                      model_kwargs={"width": 8} if model == "resnet1d_wang" else {"size": "tiny"},
                      epochs=1, batch_size=64, threads=1)
    ds = load("cpsc2018", root=cpsc_corpus, task="all", fs=100, progress=False)
    mem = ECGDataset(name=ds.name, task=ds.task, signals=np.array(ds.signals), labels=ds.labels,
                     classes=ds.classes, fs=ds.fs, record_ids=ds.record_ids, patient_ids=ds.patient_ids,
                     folds=ds.folds)
    data = build_inputs(cfg, create(model, len(ds.classes), **cfg.model_kwargs), mem)
    victim = int(data.train[0])
    if key == "signal":
        mem.signals[victim, 3] = np.inf                  # the whole lead: any random crop sees it
    else:
        data.tokens.tokens[victim, 0, 0, 0] = np.nan
    with pytest.raises(NonFiniteError, match=f"non-finite input '{key}' in epoch 0"):
        fit(cfg, data=data)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_check_record_rejects_non_finite_samples(value):
    sig = np.random.default_rng(1).normal(0, 1, (12, 1000)).astype(np.float32)
    sig[2, 10] = value
    with pytest.raises(RecordError, match=r"rec\.hea.*non-finite samples \(NaN/inf\) in lead rows \[2\]") as e:
        check_record(sig, "rec.hea")
    assert e.value.reason == "nan_samples"


@pytest.fixture(scope="module")
def ptbxl_corpus(tmp_path_factory):
    ds = generate(SynthConfig(n_records=30, fs=100, seed=5), task="superdiagnostic")
    root = write_ptbxl(ds, tmp_path_factory.mktemp("hostile") / "ptbxl")
    db = pd.read_csv(root / "ptbxl_database.csv")
    d = np.round(np.asarray(ds.signals[0]) * 1000).astype(np.int64)
    rows = []
    for ecg_id, scp in ((101, "['NORM']"), (102, "{'NORM': 100.0}"), (103, "{'NORM': 100.0}")):
        rel = f"records100/00000/{ecg_id:05d}_lr"
        write_wfdb(root / "records100" / "00000", f"{ecg_id:05d}_lr", PTBXL_LEADS, d, 100)
        rows.append({"ecg_id": ecg_id, "patient_id": 9000.0 + ecg_id, "scp_codes": scp, "strat_fold": 1,
                     "filename_lr": rel, "filename_hr": rel})
    dat = root / "records100" / "00000" / "00102_lr.dat"
    dat.write_bytes(dat.read_bytes()[:3000])                           # truncated .dat
    hea = root / "records100" / "00000" / "00103_lr.hea"
    hea.write_text(hea.read_text().replace("00103_lr 12 100 1000", "00103_lr 12 100 900", 1))
    pd.concat([db, pd.DataFrame(rows)]).to_csv(root / "ptbxl_database.csv", index=False)
    return root


def test_ptbxl_corpus_report(ptbxl_corpus, tmp_path):
    ds = load("ptbxl", root=ptbxl_corpus, task="superdiagnostic", fs=100, cache_dir=tmp_path / "c", progress=False)
    dropped = {d["record_id"]: d for d in ds.report["dropped"]}
    assert {k: d["reason"] for k, d in dropped.items()} == {
        "101": "bad_scp_codes", "102": "header_data_mismatch", "103": "header_data_mismatch"}
    assert "scp_codes \"['NORM']\" is not a dict" in dropped["101"]["detail"]
    assert "00102_lr.dat" in dropped["102"]["detail"] and "00103_lr" in dropped["103"]["detail"]
    assert len(ds) == 30


def test_ptbxl_csv_with_a_missing_column_is_a_clear_error(ptbxl_corpus, tmp_path):
    import shutil
    root = tmp_path / "broken"
    shutil.copytree(ptbxl_corpus, root)
    db = pd.read_csv(root / "ptbxl_database.csv")
    db.drop(columns=["strat_fold"]).to_csv(root / "ptbxl_database.csv", index=False)
    err = raises_record_error("missing_columns", "ptbxl_database.csv", load, "ptbxl", root=root,
                              task="superdiagnostic", fs=100, cache_dir=tmp_path / "c", progress=False)
    assert "strat_fold" in str(err)


def test_no_torch_nan_in_prepared_tokens(cpsc_corpus, beat_ray_cache):
    ds = load("cpsc2018", root=cpsc_corpus, task="all", fs=100, progress=False)
    tk = tokens_for(ds)
    assert np.isfinite(np.asarray(tk.tokens)).all() and np.isfinite(np.asarray(tk.rr)).all()
