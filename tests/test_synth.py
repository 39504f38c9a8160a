"""The embedded `synth` dataset: physics (Einthoven), determinism, and that every class is caused
by a feature one can measure in the signal (what the BEAT-Net encoders are supposed to find)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from beat_ray.data.leads import LEAD_INDEX
from beat_ray.data.synth import (
    CLASSES_ALL,
    GRADED,
    SUPERDIAGNOSTIC,
    SYNTH_TASKS,
    SynthConfig,
    generate,
    task_labels,
)

CLEAN = {"noise_mv": 0.0, "baseline_wander_mv": 0.0}
II, III, AVF, V1, V5, V6 = (LEAD_INDEX[k] for k in ("II", "III", "aVF", "V1", "V5", "V6"))


@pytest.fixture(scope="module")
def noisy():
    return generate(SynthConfig(n_records=600, seed=3))


@pytest.fixture(scope="module")
def clean():
    return generate(SynthConfig(n_records=600, seed=3, **CLEAN))


@pytest.fixture(scope="module")
def clean500():
    return generate(SynthConfig(n_records=240, fs=500, seed=5, **CLEAN))


def has(ds, name: str) -> np.ndarray:
    return ds.extras["labels_true"][:, CLASSES_ALL.index(name)].astype(bool)


def normal(ds) -> np.ndarray:
    """No morphology/territory finding, not even a sub-threshold one, and not AF."""
    return (ds.extras["severity"] == 0).all(1) & ~has(ds, "AFIB")


def beats(ds, mask: np.ndarray, a: float, b: float, min_prev_rr: float = 0.0) -> np.ndarray:
    """(n_beats, 12, L) windows [R+a, R+b) s around conducted beats of the masked records, minus the
    PR-segment baseline (R-80..R-55 ms). Beats near the record edges are skipped."""
    fs, n_t = ds.fs, ds.signals.shape[-1]
    rp, off, bt = ds.extras["r_peaks"], ds.extras["r_offsets"], ds.extras["beat_types"]
    rec = np.repeat(np.arange(len(ds)), np.diff(off))
    prev_rr = np.diff(rp, prepend=-10**6) / fs
    prev_rr[np.r_[True, rec[1:] != rec[:-1]]] = 0.0
    sel = mask[rec] & (bt == 0) & (rp >= 0.35 * fs) & (rp < n_t - 0.4 * fs) & (prev_rr >= min_prev_rr)
    rows = rec[sel][:, None]
    win = ds.signals[rows, :, rp[sel][:, None] + np.arange(round(a * fs), round(b * fs))].transpose(0, 2, 1)
    base = ds.signals[rows, :, rp[sel][:, None] + np.arange(round(-0.08 * fs), round(-0.055 * fs))].mean(1)
    return win - base[:, :, None]


def test_einthoven_and_goldberger(noisy):
    x = noisy.signals
    lead = {k: x[:, i] for k, i in LEAD_INDEX.items()}
    np.testing.assert_allclose(lead["I"] + lead["III"], lead["II"], atol=1e-5)
    np.testing.assert_allclose(lead["aVR"] + lead["aVL"] + lead["aVF"], 0.0, atol=1e-5)
    assert x.dtype == np.float32 and x.shape == (600, 12, 1000)
    assert np.isfinite(x).all()


def test_same_seed_same_bytes_other_seed_differs():
    def digest(ds):
        h = hashlib.sha256(ds.signals.tobytes())
        for k in sorted(ds.extras):
            h.update(k.encode() + ds.extras[k].tobytes())
        h.update(ds.labels.tobytes() + ds.folds.tobytes())
        return h.hexdigest()
    cfg = SynthConfig(n_records=40, seed=11)
    assert digest(generate(cfg)) == digest(generate(cfg))
    assert digest(generate(cfg)) != digest(generate(SynthConfig(n_records=40, seed=12)))


def test_amplitudes_are_realistic(clean):
    qrs = beats(clean, normal(clean), -0.05, 0.05)
    r_ii = qrs[:, II].max(-1).mean()
    assert 0.9 < r_ii < 1.6, r_ii
    p = beats(clean, normal(clean) & ~has(clean, "AFIB"), -0.25, -0.09)
    assert p.max(-1).max(1).mean() < 0.25


def test_p_wave_largest_in_lead_ii(clean):
    sinus = (has(clean, "SR") | has(clean, "SBRAD")) & normal(clean)
    avg = beats(clean, sinus, -0.25, -0.09, min_prev_rr=0.8).mean(0)       # coherent average: P only
    p_amp = avg.max(-1)
    assert p_amp.argmax() == II, p_amp
    assert 0.05 < p_amp[II] < 0.25


def test_af_irregular_and_without_p(noisy, clean):
    cv = noisy.extras["rr_cv"]
    sr = has(noisy, "SR") & ~has(noisy, "PVC")
    assert cv[has(noisy, "AFIB")].mean() > 0.15 and cv[sr].mean() < 0.05
    # RR CV recomputed from the ground-truth R peaks agrees
    rp, off = noisy.extras["r_peaks"], noisy.extras["r_offsets"]
    for i in np.flatnonzero(has(noisy, "AFIB"))[:5]:
        rr = np.diff(rp[off[i]:off[i + 1]])
        assert abs(rr.std() / rr.mean() - cv[i]) < 1e-5
    # P waves are time-locked to R in sinus rhythm, absent in AF (f-waves average out)
    p_sinus = beats(clean, has(clean, "SR"), -0.25, -0.09, min_prev_rr=0.8).mean(0)[II].max()
    p_af = beats(clean, has(clean, "AFIB"), -0.25, -0.09, min_prev_rr=0.8).mean(0)[II].max()
    assert p_sinus > 0.07 and p_af < 0.03, (p_sinus, p_af)
    # ...but the f-waves are there: the atrial window wobbles in V1 (where P is small) in AF only
    wobble = lambda m: beats(clean, m, -0.25, -0.09, min_prev_rr=0.8)[:, V1].std(-1).mean()
    w_af, w_sr = wobble(has(clean, "AFIB")), wobble(has(clean, "SR") & normal(clean))
    assert w_af > 0.03 and w_af > 2 * w_sr, (w_af, w_sr)


def test_pvc_beats_premature_with_compensatory_pause(noisy):
    rp, off, bt = noisy.extras["r_peaks"], noisy.extras["r_offsets"], noisy.extras["beat_types"]
    assert (bt == 1).sum() > 0
    rec = np.repeat(np.arange(len(noisy)), np.diff(off))
    assert set(np.unique(rec[bt == 1])) <= set(np.flatnonzero(has(noisy, "PVC")))
    for i in np.flatnonzero(has(noisy, "PVC"))[:20]:
        p, t = rp[off[i]:off[i + 1]], bt[off[i]:off[i + 1]]
        assert t.sum() >= 1 and not (t[1:] & t[:-1]).any()                   # isolated
        k = np.flatnonzero(t == 1)
        k = k[(k >= 1) & (k + 1 < len(p))]
        before, after = p[k] - p[k - 1], p[k + 1] - p[k]
        assert (before < after).all()                                       # premature, then a pause


def test_wide_qrs_measured_from_signal(clean500):
    ds = clean500
    bbb = has(ds, "RBBB") | has(ds, "LBBB")
    q = ds.extras["qrs_ms"]
    assert (q[bbb] >= 120).all() and ((q[normal(ds)] >= 80) & (q[normal(ds)] <= 100)).all()
    def width_ms(mask):
        # spatial velocity |dx/dt| over the 12 leads; QRS = the span where it exceeds 10% of its peak
        w = beats(ds, mask, -0.12, 0.16)
        v = np.sqrt((np.diff(w, axis=-1) ** 2).sum(1))
        above = v > 0.1 * v.max(-1, keepdims=True)
        first, last = above.argmax(-1), above.shape[-1] - 1 - above[:, ::-1].argmax(-1)
        return 1000 * (last - first) / ds.fs
    w_bbb, w_norm = width_ms(bbb).mean(), width_ms(normal(ds)).mean()
    assert w_bbb > w_norm + 25, (w_bbb, w_norm)


def test_territory_and_morphology_are_where_they_should_be(clean):
    ds, norm = clean, normal(clean)
    st = lambda m: beats(ds, m, 0.1, 0.2).mean(-1).mean(0)
    st_t = has(ds, "STD") | has(ds, "TINV") | has(ds, "RBBB") | has(ds, "LBBB")   # also move ST-T
    st_norm = st(norm)
    st_imi, st_ami = st(has(ds, "IMI") & ~has(ds, "AMI") & ~st_t), st(has(ds, "AMI") & ~has(ds, "IMI") & ~st_t)
    inferior = [LEAD_INDEX[k] for k in ("II", "III", "aVF")]
    anterior = [LEAD_INDEX[k] for k in ("V1", "V2", "V3", "V4")]
    lateral = [LEAD_INDEX[k] for k in ("I", "aVL")]
    assert (st_imi[inferior] > st_norm[inferior] + 0.08).all(), st_imi - st_norm
    assert (st_imi[lateral] < st_norm[lateral]).all()                          # reciprocal depression
    assert (st_ami[anterior] > st_norm[anterior] + 0.05).all(), st_ami - st_norm
    assert (st_ami[anterior] - st_norm[anterior]).mean() > 0.1
    assert (st_ami[anterior] - st_norm[anterior]).mean() > (st_ami[inferior] - st_norm[inferior]).mean()
    assert (st(has(ds, "STD"))[[II, V5, V6]] < st_norm[[II, V5, V6]] - 0.04).all()
    # T inversion in I, II, V3-V6
    t_leads = [LEAD_INDEX[k] for k in ("I", "II", "V3", "V4", "V5", "V6")]
    tw = beats(ds, has(ds, "TINV") & ~has(ds, "LBBB"), 0.15, 0.35).mean(-1).mean(0)
    assert (tw[t_leads] < 0).all() and (st_norm[t_leads] > 0).all()
    # LVH: Sokolow-Lyon S(V1) + max(R(V5), R(V6))
    def sokolow(m):
        w = beats(ds, m, -0.06, 0.08)
        return -w[:, V1].min(-1) + np.maximum(w[:, V5].max(-1), w[:, V6].max(-1))
    # graded: voltage grows with LV mass, so the 3.5-mV criterion is met more often, not always (as in real ECG)
    sl_lvh, sl_norm = sokolow(has(ds, "LVH")), sokolow(norm)
    assert sl_lvh.mean() > sl_norm.mean() + 1.0 and (sl_lvh > 3.5).mean() > 5 * (sl_norm > 3.5).mean()
    # RBBB vs LBBB, told apart by V1 (R' vs deep S) and V6 (slurred S vs broad R)
    qrs = lambda m: beats(ds, m, -0.08, 0.14)
    rb, lb = qrs(has(ds, "RBBB")), qrs(has(ds, "LBBB"))
    assert rb[:, V1].max(-1).mean() > 0.4 > lb[:, V1].max(-1).mean()
    assert lb[:, V1].min(-1).mean() < -1.0
    assert rb[:, V6].min(-1).mean() < lb[:, V6].min(-1).mean() - 0.15
    # IMI: pathological Q in the inferior leads
    q_imi = beats(ds, has(ds, "IMI"), -0.07, 0.0)[:, inferior].min(-1).mean()
    q_norm = beats(ds, norm, -0.07, 0.0)[:, inferior].min(-1).mean()
    assert q_imi < q_norm - 0.15


def _local_max_near(s: np.ndarray, r: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Whether a local maximum of s[r] lies within +-1 sample of each reference index p."""
    q = p + np.stack([s[r, p + d] for d in (-1, 0, 1)]).argmax(0) - 1
    return (s[r, q] >= s[r, q - 1]) & (s[r, q] >= s[r, q + 1])


def test_r_peaks_are_at_qrs_energy_maxima(clean, noisy):
    for ds, need in ((clean, 0.99), (noisy, 0.95)):
        rp, off = ds.extras["r_peaks"], ds.extras["r_offsets"]
        rec = np.repeat(np.arange(len(ds)), np.diff(off))
        x = ds.signals - np.median(ds.signals, axis=-1, keepdims=True)
        e, a2 = (x ** 2).sum(1), np.abs(x[:, II])
        n_t = x.shape[-1]
        ok = (rp >= 2) & (rp < n_t - 2)
        r, p = rec[ok], rp[ok]
        frac = (_local_max_near(e, r, p) | _local_max_near(a2, r, p)).mean()
        assert frac >= need, frac
        assert ok.mean() > 0.98 and (np.diff(rp)[rec[1:] == rec[:-1]] > 0).all()   # sorted within a record
    assert len(noisy.extras["beat_types"]) == len(noisy.extras["r_peaks"]) == noisy.extras["r_offsets"][-1]


def test_patients_never_cross_splits(noisy):
    ds = noisy
    assert set(np.unique(ds.folds)) == set(range(1, 11))
    for col in (ds.folds, ds.split):
        per_patient = {}
        for p, f in zip(ds.patient_ids, col):
            per_patient.setdefault(p, set()).add(f)
        assert all(len(v) == 1 for v in per_patient.values())
    assert ds.record_ids[123] == "synth_000123" and ds.patient_ids[0].startswith("p")
    assert len(set(ds.patient_ids)) == 200


def test_classes_present_and_tasks_consistent(noisy):
    truth = noisy.extras["labels_true"].astype(bool)
    assert truth.sum(0).min() >= 5, dict(zip(CLASSES_ALL, truth.sum(0)))
    t = dict(zip(CLASSES_ALL, truth.T))
    assert (truth[:, :4].sum(1) == 1).all()                                    # one base rhythm each
    assert not (t["RBBB"] & t["LBBB"]).any() and not (t["PVC"] & t["AFIB"]).any()
    # graded findings: the label is the threshold on the severity
    sev = noisy.extras["severity"]
    for j, c in enumerate(GRADED):
        np.testing.assert_array_equal(t[c], sev[:, j] >= 1)
    assert ((sev > 0) & (sev < 1)).any(0).all()                                # sub-threshold forms exist
    la = noisy.extras["labels_all"].astype(bool)                               # what the annotator says
    np.testing.assert_array_equal(noisy.labels, la.astype(np.uint8))
    col = dict(zip(CLASSES_ALL, la.T))
    sup, names = task_labels(la, "superdiagnostic")
    assert names == list(SUPERDIAGNOSTIC) and sup.sum(0).min() > 0
    s = dict(zip(names, sup.T.astype(bool)))
    np.testing.assert_array_equal(s["MI"], col["IMI"] | col["AMI"])
    np.testing.assert_array_equal(s["CD"], col["RBBB"] | col["LBBB"])
    np.testing.assert_array_equal(s["NORM"], ~(s["MI"] | s["STTC"] | s["CD"] | s["HYP"]))
    assert 0.35 < s["NORM"].mean() < 0.6
    small = SynthConfig(n_records=30, seed=3)
    for task in SYNTH_TASKS:
        ds = generate(small, task)
        assert list(ds.class_groups) == ds.classes and ds.labels.shape == (30, len(ds.classes))
        np.testing.assert_array_equal(ds.labels, task_labels(ds.extras["labels_all"], task)[0])
    rhythm = generate(small, "rhythm")
    assert rhythm.classes == ["SR", "SBRAD", "STACH", "AFIB", "PVC"]
    assert set(rhythm.class_groups.values()) == {"rhythm"}
    with pytest.raises(ValueError, match="unknown synth task"):
        generate(small, "form")
    with pytest.raises(ValueError, match="10 patients"):
        generate(SynthConfig(n_records=29))


def test_extras_survive_the_cache(tmp_path):
    from beat_ray.data.dataset import ECGDataset
    ds = generate(SynthConfig(n_records=30, seed=1))
    back = ECGDataset.open(ds.save(tmp_path / "synth"))
    for k, v in ds.extras.items():
        assert back.extras[k].dtype == v.dtype
        np.testing.assert_array_equal(back.extras[k], v)
    np.testing.assert_array_equal(np.asarray(back.signals), ds.signals)


def test_label_noise_is_exact_and_keeps_prevalence(noisy):
    """Per class, round(rate x positives) positives lose the label and as many negatives gain it."""
    truth, la = noisy.extras["labels_true"].astype(bool), noisy.extras["labels_all"].astype(bool)
    rate = SynthConfig().label_noise
    assert rate > 0
    for j, c in enumerate(CLASSES_ALL):
        k = int(round(rate * truth[:, j].sum()))
        assert (truth[:, j] & ~la[:, j]).sum() == k and (~truth[:, j] & la[:, j]).sum() == k, c
    assert noisy.report["synth_label_noise"]["rate"] == rate
    exact = generate(SynthConfig(n_records=60, seed=3, label_noise=0.0))
    np.testing.assert_array_equal(exact.extras["labels_all"], exact.extras["labels_true"])
    with pytest.raises(ValueError, match="label_noise"):
        generate(SynthConfig(n_records=60, label_noise=0.6))
