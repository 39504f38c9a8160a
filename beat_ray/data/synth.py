"""`synth`: an embedded 12-lead ECG dataset with known ground truth, built in vectorised numpy.

Why: none of the real benchmarks can be downloaded here, and the tests and the demo need data
whose labels are *caused* by measurable features. Every record is a 3-D cardiac dipole (see
`synth_waves.py`) projected on the Dower lead vectors, so Einthoven's law holds to float error;
every class changes something a cardiologist (and a BEAT-Net encoder) could see:

  rhythm     (needs the beat sequence)   SR, SBRAD, STACH, AFIB (irregular RR, no P, f-waves), PVC
  morphology (visible in one beat)       LVH (voltage and QRS width grow with LV mass; notched QRS),
                                         STD (diffuse ST depression),
                                         TINV (T inverted in I, II, V3-V6)
  territory  (needs the lead pattern)    IMI (Q + ST up in II/III/aVF), AMI (V1-V4), RBBB, LBBB

Labels: exactly one of SR/SBRAD/STACH/AFIB per record, PVC optional on top of a sinus rhythm.
Structural disease (LVH, IMI, AMI, RBBB/LBBB, mutually exclusive BBBs) is a *patient* property,
shared by the patient's `records_per_patient` records together with their heart axis and wave
amplitudes; rhythm, PVC, STD and TINV are drawn per record (they come and go).

Difficulty (issue J: all models scored 0.99 on the first synth, so a positive control could not
show a graded effect): findings are graded and the label is a threshold on them, with many
borderline records on both sides (`synth_labels.py`); conditions co-occur; patients differ in
axis (`axis_sd_deg`), habitus (`habitus_sd`) and rate (each rhythm's rate band touches the next);
LVH fragments the QRS with a notch whose place and sign change from beat to beat, so it takes a
nonlinear beat encoder to see; and a stated share of labels is wrong (`label_noise`, exact per
class). `extras["labels_true"]` is the ground truth, `extras["labels_all"]` the annotated labels.

Ground truth in `extras`: every R peak (the sample of maximum noise-free 12-lead energy
sum(x^2) within +-60 ms of the beat's R-wave centre, i.e. what an energy-based QRS detector
finds), its beat type (0 = conducted, 1 = PVC), the true QRS duration of the conducted beat,
RR coefficient of variation, and the full "all" label matrix. Same config -> same bytes.

`atrial_lead="II"` (or any lead) makes the lead-attribution positive control: P waves and AF
f-waves are drawn into that lead only (3x, as lead II would see them) and AF's RR is regular at
sinus rates, so AFIB differs from SR in that one lead and nowhere else (Einthoven no longer holds).

    ds = generate(SynthConfig(n_records=600), task="superdiagnostic")
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from beat_ray.data.dataset import ECGDataset
from beat_ray.data.leads import LEADS
from beat_ray.data.splits import stratified_group_folds
from beat_ray.data.synth_labels import (
    CLASSES_ALL,
    GRADED,
    RHYTHMS,
    SUPERDIAGNOSTIC,
    SYNTH_TASKS,
    annotate,
    sample_conditions,
    task_labels,
)
from beat_ray.data.synth_waves import (
    DOWER,
    PVC_BEAT,
    ST,
    U_FWAVE,
    N,
    P,
    T,
    Templates,
    beat_templates,
    derive_12,
    unit,
)

__all__ = ["CLASSES_ALL", "CLASS_GROUPS", "GRADED", "RHYTHMS", "SUPERDIAGNOSTIC", "SYNTH_TASKS", "SynthConfig",
           "generate", "task_labels"]
CLASS_GROUPS: dict[str, str] = {
    **{c: "rhythm" for c in (*RHYTHMS, "PVC")},
    **{c: "morphology" for c in ("LVH", "STD", "TINV", "STTC", "HYP")},
    **{c: "territory" for c in ("IMI", "AMI", "RBBB", "LBBB", "MI", "CD")},
    "NORM": "none",
}
# Prevalences. Rhythm: categorical per record; PVC: among sinus records; LVH/IMI/AMI/RBBB/LBBB:
# per patient; STD/TINV: per record. About 47% of records have no morphology/territory class.
DEFAULT_PREVALENCE: tuple[tuple[str, float], ...] = (
    ("SR", 0.62), ("SBRAD", 0.12), ("STACH", 0.12), ("AFIB", 0.14), ("PVC", 0.18),
    ("LVH", 0.12), ("IMI", 0.10), ("AMI", 0.10), ("RBBB", 0.08), ("LBBB", 0.06),
    ("STD", 0.12), ("TINV", 0.12))
HEART_RATE = {"SR": (60, 100), "SBRAD": (42, 60), "STACH": (100, 150), "AFIB": (60, 150)}  # bpm, bands touch
GENERATOR_VERSION = 2          # bump when the same SynthConfig gives other bytes (prepare's cache key)
CHUNK = 256                   # records rendered at once; fixed, so output never depends on it
WINDOW = (0.3, 0.75)          # a beat is drawn from R - 0.3 s to R + 0.75 s
PEAK_HALF_WINDOW = 0.06       # s, R-peak search around the R-wave centre


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines the bytes of the dataset (hashable; asdict() is JSON-safe)."""

    n_records: int = 6000
    fs: int = 100
    seconds: float = 10.0
    seed: int = 0
    records_per_patient: int = 3
    noise_mv: float = 0.02                          # white noise std per independent lead
    baseline_wander_mv: float = 0.05                # amplitude of each of two < 0.5 Hz sinusoids per lead
    hrv: float = 0.02                               # sinus beat-to-beat RR jitter (sd, fraction of RR)
    rsa: float = 0.03                               # respiratory sinus arrhythmia (fraction of RR)
    af_rr_cv: tuple[float, float] = (0.10, 0.30)    # per-record AF RR coefficient of variation range
    fwave_mv: tuple[float, float] = (0.03, 0.12)    # AF f-wave dipole amplitude (~0.8x that in II, V1)
    prevalence: tuple[tuple[str, float], ...] = DEFAULT_PREVALENCE
    # Positive control for lead attribution (issue I): P waves and AF f-waves appear in this lead only
    # (drawn as lead II would see them), AF's RR is regular and at sinus rates, so SR vs AFIB is told
    # apart by that one lead alone. Unphysical on purpose: Einthoven's law no longer holds for it.
    atrial_lead: str | None = None
    atrial_gain: float = 3.0                        # atrial amplitude x this in the control, so models can learn it
    # Difficulty (issue J). All zero gives all-or-nothing findings and the models' 0.99 ceiling.
    axis_sd_deg: float = 25.0                       # patients' frontal heart axis, sd (clipped at 2.5 sd)
    tilt_sd_deg: float = 10.0                       # patients' 3-D heart orientation, sd of the rotation
    habitus_sd: float = 0.2                         # patients' amplitude scale, log-sd (chest wall, body size)
    subthreshold: float = 0.25                      # share of records without a finding that carry a sub-threshold form
    notch_mv: float = 0.3                           # LVH's beat-varying QRS notch at severity 1 (dipole mV)
    label_noise: float = 0.03                       # per class, this share of positives mislabelled (and as many negatives)


# ---------------------------------------------------------------------------------- rhythm
def beat_times(rng: np.random.Generator, cfg: SynthConfig, lab: dict[str, np.ndarray]):
    """R-wave times (n, B) in s, beat types, preceding RR, and which beats touch the record.

    Sinus: RR = RR0 (1 + RSA sin(resp) + jitter). AF: i.i.d. log-normal RR with the drawn CV.
    A PVC replaces a sinus beat at 55-70% of its RR; the next sinus beat keeps its time, which
    is the full compensatory pause.
    """
    n = len(lab["SR"])
    rhythm = np.select([lab[c] for c in RHYTHMS], range(len(RHYTHMS)))
    rate = {**HEART_RATE, "AFIB": HEART_RATE["SR"]} if cfg.atrial_lead else HEART_RATE
    lo, hi = (np.array([rate[c][j] for c in RHYTHMS], float) for j in (0, 1))
    rr0 = (60.0 / rng.uniform(lo[rhythm], hi[rhythm]))[:, None]
    n_beats = int(np.ceil((cfg.seconds + 2.0) / 0.28)) + 2
    k = np.arange(n_beats)
    resp = np.sin(2 * np.pi * rng.uniform(0.2, 0.33, (n, 1)) * k * rr0 + rng.uniform(0, 2 * np.pi, (n, 1)))
    rr_sinus = rr0 * (1 + cfg.rsa * resp + cfg.hrv * rng.standard_normal((n, n_beats)))
    s = np.sqrt(np.log1p(rng.uniform(*cfg.af_rr_cv, (n, 1)) ** 2))
    rr_af = rr0 * np.exp(s * rng.standard_normal((n, n_beats)) - s ** 2 / 2)
    rr = np.clip(rr_sinus if cfg.atrial_lead else np.where(lab["AFIB"][:, None], rr_af, rr_sinus), 0.28, 2.5)
    t = -0.75 - rng.uniform(0, 1, (n, 1)) * rr0 + np.cumsum(rr, 1)
    # isolated PVCs
    eligible = lab["PVC"][:, None] & (t > 0.8) & (t < cfg.seconds - 0.8) & (k >= 1)
    score = rng.random((n, n_beats))
    pick = eligible & (score < rng.uniform(0.08, 0.2, (n, 1)))
    rows = np.flatnonzero(eligible.any(1))
    pick[rows, np.where(eligible, score, -1.0)[rows].argmax(1)] = True      # at least one PVC
    pick[:, 1:] &= ~pick[:, :-1]                                            # never two in a row
    coupling = rng.uniform(0.55, 0.7, (n, n_beats)) * rr
    t_pvc = np.concatenate([t[:, :1], t[:, :-1] + coupling[:, 1:]], 1)
    t = np.where(pick, t_pvc, t)
    rr_prev = np.diff(t, axis=1, prepend=t[:, :1] - rr[:, :1])
    keep = (t > -WINDOW[1]) & (t < cfg.seconds + WINDOW[0])
    return t, pick.astype(np.uint8), rr_prev, keep


# ---------------------------------------------------------------------------------- rendering
_LEAD_II_VECTOR = derive_12(DOWER.astype(np.float64)[None])[0][LEADS.index("II")].astype(np.float32)   # (3,)


def _energy_matrix() -> np.ndarray:
    """A (3, 3) with |A d|^2 = sum over the 12 leads of (lead . d)^2, the noise-free QRS energy."""
    lead12 = derive_12(DOWER.astype(np.float64)[None])[0]                 # (12, 3)
    w, v = np.linalg.eigh(lead12.T @ lead12)
    return (np.sqrt(np.clip(w, 0, None))[:, None] * v.T).astype(np.float32)


def render_dipole(tm: Templates, rec: np.ndarray, row: np.ndarray, t: np.ndarray, types: np.ndarray,
                  rr_prev: np.ndarray, n: int, fs: int, n_samples: int, waves: list[int] | None = None,
                  notch: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Sum every beat's Gaussians into (n, 3, n_samples), all beats at once.

    Per beat: `rec` its record (template row), `row` its output row, `t` its R time in s.
    `waves`: only these wave indices (e.g. [P]); the sum is linear in them. `notch`: per beat, where
    in the QRS (0 = onset, 1 = offset) the notch wave N sits and its sign (+-1).
    """
    vec, cen, sig = tm.vec[rec, types], tm.cen[rec, types].copy(), tm.sig[rec, types].copy()
    if notch is not None:
        on, off = tm.qrs_on[rec, types], tm.qrs_off[rec, types]
        cen[:, N] = on + notch[0] * (off - on)
        vec[:, N] *= notch[1][:, None]
    if waves is not None:
        keep = np.zeros(vec.shape[1], np.float32)
        keep[waves] = 1.0
        vec = vec * keep[None, :, None]
    sq = np.sqrt(np.where(types == PVC_BEAT, 1.0, np.clip(rr_prev, 0.3, 2.0)))    # Bazett
    qrs_off = tm.qrs_off[rec, types]
    sig[:, T] = tm.sig_t[rec, types] * sq
    cen[:, T] = tm.qrs_on[rec, types] + tm.qtc[rec, types] * sq - 2.5 * sig[:, T]
    cen[:, ST] = (qrs_off + cen[:, T]) / 2
    sig[:, ST] = np.maximum((cen[:, T] - qrs_off) / 3, 0.01)
    pre, length = round(WINDOW[0] * fs), round(sum(WINDOW) * fs)
    pos = (np.floor(t * fs).astype(np.int64) - pre)[:, None] + np.arange(length)     # (nb, L)
    tau = (pos / fs - t[:, None]).astype(np.float32)
    g = np.exp(-0.5 * np.square((tau[:, None, :] - cen[:, :, None]) / sig[:, :, None]))
    contrib = np.einsum("bwl,bwk->bkl", g, vec)                                       # (nb, 3, L)
    inside = np.broadcast_to(((pos >= 0) & (pos < n_samples))[:, None, :], contrib.shape)
    flat = (row[:, None, None] * 3 + np.arange(3)[None, :, None]) * n_samples + pos[:, None, :]
    out = np.bincount(flat[inside], weights=contrib[inside], minlength=n * 3 * n_samples)
    return out.reshape(n, 3, n_samples).astype(np.float32)


def fwaves(f0: np.ndarray, amp: np.ndarray, phase: np.ndarray, direction: np.ndarray,
           fs: int, n_samples: int) -> np.ndarray:
    """AF fibrillatory waves (m, 3, T): a 4-10 Hz frequency-modulated oscillation with a harmonic."""
    tt = np.arange(n_samples) / fs
    fm = 0.15                                                  # Hz, slow drift of the f-wave rate
    ph = 2 * np.pi * f0[:, None] * tt + (1.0 / fm) * np.sin(2 * np.pi * fm * tt + phase[:, :1]) + phase[:, 1:2]
    a = amp[:, None] * (1 + 0.3 * np.sin(2 * np.pi * 0.4 * tt + phase[:, 2:3]))
    w = a * (np.sin(ph) + 0.3 * np.sin(2 * ph + phase[:, 3:4]))
    return (direction[:, :, None] * w[:, None, :]).astype(np.float32)


def rr_variation(r_peaks: np.ndarray, r_offsets: np.ndarray) -> np.ndarray:
    """Per record, std/mean of its RR intervals (0 with fewer than 2 intervals), without a Python loop."""
    n = len(r_offsets) - 1
    rec = np.repeat(np.arange(n), np.diff(r_offsets))          # record of each peak
    same = rec[1:] == rec[:-1]                                  # both ends of the interval in one record
    rr, rec = np.diff(r_peaks).astype(np.float64)[same], rec[1:][same]
    cnt = np.bincount(rec, minlength=n)
    mean = np.bincount(rec, rr, minlength=n) / np.maximum(cnt, 1)
    var = np.bincount(rec, rr ** 2, minlength=n) / np.maximum(cnt, 1) - mean ** 2
    cv = np.sqrt(np.clip(var, 0, None)) / np.where(mean > 0, mean, 1)
    return np.where(cnt >= 2, cv, 0.0).astype(np.float32)


def _render_chunk(cfg: SynthConfig, sl: slice, tm: Templates, t: np.ndarray, types: np.ndarray,
                  rr_prev: np.ndarray, keep: np.ndarray, extra: dict[str, np.ndarray]):
    """Records `sl`: 12-lead signals (m, 12, T) float32, their R peaks, beat types and peaks per record."""
    fs, n_samples, m = int(cfg.fs), round(cfg.seconds * cfg.fs), sl.stop - sl.start
    rec, b = np.nonzero(keep[sl])
    t_b, type_b, rr_b = t[sl][rec, b], types[sl][rec, b], rr_prev[sl][rec, b]
    rec_all, type_b_all = rec, type_b
    notch = (extra["notch_at"][sl][rec, b], extra["notch_sign"][sl][rec, b])
    dip = render_dipole(tm, rec + sl.start, rec, t_b, type_b, rr_b, m, fs, n_samples, notch=notch)
    # ground-truth R peak: argmax of the noise-free 12-lead energy near the R-wave centre
    e = np.square(np.einsum("ij,njt->nit", _energy_matrix(), dip)).sum(1)          # (m, T)
    centre = np.round(t_b * fs).astype(np.int64)
    inside = (centre >= 0) & (centre < n_samples)
    rec, centre, type_b = rec[inside], centre[inside], type_b[inside]
    half = max(1, round(PEAK_HALF_WINDOW * fs))
    win = np.clip(centre[:, None] + np.arange(-half, half + 1), 0, n_samples - 1)
    peaks = win[np.arange(len(win)), e[rec[:, None], win].argmax(1)]
    # AF f-waves live in the dipole; noise goes on the 8 independent leads, so Einthoven still holds
    atrial = np.zeros_like(dip)
    if cfg.atrial_lead:                         # the positive control: atrial activity leaves the dipole
        atrial = render_dipole(tm, rec_all + sl.start, rec_all, t_b, type_b_all, rr_b, m, fs, n_samples, waves=[P])
        dip -= atrial
    a_i = np.flatnonzero(extra["af"][sl])
    if len(a_i):
        g = a_i + sl.start
        atrial[a_i] += fwaves(extra["f0"][g], extra["f_amp"][g], extra["f_phase"][g], extra["f_dir"][g],
                              fs, n_samples)
    if not cfg.atrial_lead:
        dip += atrial
    leads8 = np.einsum("lk,nkt->nlt", DOWER, dip)
    noise_rng = np.random.default_rng([cfg.seed, 1, sl.start])
    leads8 += cfg.noise_mv * noise_rng.standard_normal(leads8.shape, dtype=np.float32)
    tt = np.arange(n_samples, dtype=np.float32) / fs
    leads8 += (extra["bw_amp"][sl] * np.sin(extra["bw_w"][sl] * tt + extra["bw_phase"][sl])).sum(2)
    out = derive_12(leads8)
    if cfg.atrial_lead:                         # drawn as lead II sees it, into the chosen lead only
        out[:, LEADS.index(cfg.atrial_lead)] += cfg.atrial_gain * np.einsum("k,nkt->nt", _LEAD_II_VECTOR, atrial)
    return out, peaks, type_b, np.bincount(rec, minlength=m)


# ---------------------------------------------------------------------------------- dataset
def generate(config: SynthConfig = SynthConfig(), task: str = "all") -> ECGDataset:
    """Build the dataset for one config and task (labels differ per task; signals never do)."""
    cfg = config
    if task not in SYNTH_TASKS:
        raise ValueError(f"unknown synth task {task!r}; expected one of {SYNTH_TASKS}")
    if cfg.records_per_patient < 1 or cfg.n_records < 10 * cfg.records_per_patient:
        raise ValueError(f"synth needs records_per_patient >= 1 and at least 10 patients for 10 folds "
                         f"(n_records >= {10 * max(cfg.records_per_patient, 1)}), got {cfg}")
    if cfg.atrial_lead is not None and cfg.atrial_lead not in LEADS:
        raise ValueError(f"synth atrial_lead must be one of {LEADS}, got {cfg.atrial_lead!r}")
    if cfg.fs < 50 or cfg.seconds < 2:
        raise ValueError(f"synth needs fs >= 50 Hz and seconds >= 2, got fs={cfg.fs}, seconds={cfg.seconds}")
    prevalence = dict(cfg.prevalence)
    if set(prevalence) != set(CLASSES_ALL):
        raise ValueError(f"prevalence must give exactly {CLASSES_ALL}, got {sorted(prevalence)}")
    n, fs, n_samples = cfg.n_records, int(cfg.fs), round(cfg.seconds * cfg.fs)
    rng = np.random.default_rng(cfg.seed)
    patient = np.arange(n) // cfg.records_per_patient
    truth, sev = sample_conditions(rng, patient, prevalence, cfg.subthreshold)
    lab = {c: truth[:, i] for i, c in enumerate(CLASSES_ALL)}
    tm = beat_templates(rng, patient, lab, sev, cfg.axis_sd_deg, cfg.tilt_sd_deg, cfg.habitus_sd, cfg.notch_mv)
    t, types, rr_prev, keep = beat_times(rng, cfg, lab)
    labels_all = annotate(truth, cfg.label_noise, np.random.default_rng([cfg.seed, 2]))
    # every other per-record draw happens here, so rendering in chunks cannot change the bytes
    extra = {"af": lab["AFIB"],
             "f0": rng.uniform(5.0, 8.0, n), "f_amp": rng.uniform(*cfg.fwave_mv, n),
             "f_phase": rng.uniform(0, 2 * np.pi, (n, 4)),
             "f_dir": unit(U_FWAVE + 0.15 * rng.standard_normal((n, 3))).astype(np.float32),
             # baseline wander: per lead, a respiratory (0.15-0.3 Hz) and a slow (0.03-0.15 Hz) sinusoid
             "bw_amp": (cfg.baseline_wander_mv * rng.uniform(0.5, 1.5, (n, 8, 2, 1))).astype(np.float32),
             "bw_w": (2 * np.pi * np.stack([rng.uniform(0.15, 0.3, (n, 8)), rng.uniform(0.03, 0.15, (n, 8))],
                                           2))[..., None].astype(np.float32),
             "bw_phase": rng.uniform(0, 2 * np.pi, (n, 8, 2, 1)).astype(np.float32),
             "notch_at": rng.uniform(0.15, 0.85, t.shape).astype(np.float32),
             "notch_sign": rng.choice(np.array([-1.0, 1.0], np.float32), t.shape)}
    signals = np.empty((n, 12, n_samples), np.float32)
    peaks, peak_types, n_peaks = [], [], np.zeros(n, np.int64)
    for c0 in range(0, n, CHUNK):
        sl = slice(c0, min(c0 + CHUNK, n))
        signals[sl], p, ty, n_peaks[sl] = _render_chunk(cfg, sl, tm, t, types, rr_prev, keep, extra)
        peaks.append(p)
        peak_types.append(ty)

    r_peaks = np.concatenate(peaks).astype(np.int64)
    r_offsets = np.concatenate([[0], np.cumsum(n_peaks)]).astype(np.int64)
    rr_cv = rr_variation(r_peaks, r_offsets)
    labels, classes = task_labels(labels_all, task)
    record_ids = np.array([f"synth_{i:06d}" for i in range(n)], dtype=object)
    patient_ids = np.array([f"p{p:05d}" for p in patient], dtype=object)
    folds = stratified_group_folds(truth, patient_ids, 10, cfg.seed)
    extras = {"r_peaks": r_peaks, "r_offsets": r_offsets, "beat_types": np.concatenate(peak_types).astype(np.uint8),
              "qrs_ms": tm.qrs_ms, "rr_cv": rr_cv, "labels_all": labels_all.astype(np.uint8),
              "labels_true": truth.astype(np.uint8),
              "severity": np.stack([sev[c] for c in GRADED], 1).astype(np.float32)}   # columns: GRADED
    report = {"synth_prevalence": {c: float(truth[:, i].mean()) for i, c in enumerate(CLASSES_ALL)},
              "synth_label_noise": {"rate": cfg.label_noise,
                                    "flipped": {c: int((truth[:, i] != labels_all[:, i]).sum())
                                                for i, c in enumerate(CLASSES_ALL)}}}
    config_d = {**asdict(cfg), "classes_all": list(CLASSES_ALL)}
    return ECGDataset(name="synth", task=task, signals=signals, labels=labels, classes=classes, fs=fs,
                      record_ids=record_ids, patient_ids=patient_ids, folds=folds,
                      class_groups={c: CLASS_GROUPS[c] for c in classes}, extras=extras, report=report,
                      config=config_d)
