"""Labels of the embedded `synth` dataset: graded severities, their ground truth, and annotation noise.

Why graded: with all-or-nothing findings every model scored 0.99 on synth, so a positive control
on it could not show a graded effect (issue J). Real findings are continuous and the label is a
threshold on them (Sokolow-Lyon > 3.5 mV, QRS >= 120 ms, ST depression >= 0.05 mV, rate < 60 or
> 100 bpm), so records near the threshold are hard on both sides of it. Here every condition has a
latent severity s: s >= 1 is the condition (the ground truth), 0 < s < 1 a sub-threshold form of
it (incomplete bundle-branch block, a flat T, small inferior q, borderline voltage) that is not
labelled, and 0 is absent. Positives have s = 1 + Exp(mean 0.5), so many sit just above the
threshold; a fraction `subthreshold` of the other records get s ~ U(0.3, 1).

Co-occurrence: the structural conditions (LVH, IMI, AMI, a bundle-branch block) are drawn per
patient and independently, so they combine freely; LVH doubles the chance of its strain pattern
(STD, TINV) in each record, as in hypertensive heart disease.

Annotation noise (`label_noise` = r): per class, a fraction r of the positives lose the label and
the same number of negatives gain it, so prevalences are kept and the rate is exact. The noisy
labels are what models train and are tested on (as PTB-XL's are); `labels_true` keeps the truth.
"""
from __future__ import annotations

import numpy as np

RHYTHMS = ("SR", "SBRAD", "STACH", "AFIB")
CLASSES_ALL = (*RHYTHMS, "PVC", "LVH", "STD", "TINV", "IMI", "AMI", "RBBB", "LBBB")
SUPERDIAGNOSTIC = ("NORM", "MI", "STTC", "CD", "HYP")
SYNTH_TASKS = ("all", "superdiagnostic", "rhythm")
GRADED = ("LVH", "STD", "TINV", "IMI", "AMI", "RBBB", "LBBB")
STRAIN_RISK = 2.0             # LVH multiplies the per-record chance of STD and TINV by this


def _graded(rng: np.random.Generator, positive: np.ndarray, subthreshold: float) -> np.ndarray:
    """Severity per row: 1 + Exp(0.5) where positive, U(0.3, 1) for a `subthreshold` share of the rest."""
    s = np.zeros(len(positive))
    s[positive] = 1.0 + rng.exponential(0.5, int(positive.sum()))
    sub = ~positive & (rng.random(len(positive)) < subthreshold)
    s[sub] = rng.uniform(0.3, 1.0, int(sub.sum()))
    return s


def sample_conditions(rng: np.random.Generator, patient: np.ndarray, prevalence: dict[str, float],
                      subthreshold: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Ground truth (n, len(CLASSES_ALL)) bool and each graded class's severity (n,) per record.

    Rhythm: one of SR/SBRAD/STACH/AFIB per record (its rate is drawn in synth.beat_times, inside the
    band the label names); PVC on top of a sinus rhythm; structural classes per patient.
    """
    n, n_pat = len(patient), int(patient.max()) + 1
    p_rhythm = np.array([prevalence[c] for c in RHYTHMS])
    rhythm = rng.choice(len(RHYTHMS), size=n, p=p_rhythm / p_rhythm.sum())
    lab = {c: rhythm == i for i, c in enumerate(RHYTHMS)}
    lab["PVC"] = ~lab["AFIB"] & (rng.random(n) < prevalence["PVC"])
    sev: dict[str, np.ndarray] = {}
    for c in ("LVH", "IMI", "AMI"):
        sev[c] = _graded(rng, rng.random(n_pat) < prevalence[c], subthreshold)[patient]
    bbb = rng.choice(3, size=n_pat, p=[1 - prevalence["RBBB"] - prevalence["LBBB"],
                                       prevalence["RBBB"], prevalence["LBBB"]])
    # one conduction pattern per patient: a sub-threshold (incomplete) block only where no complete one
    sub_kind = rng.choice(2, size=n_pat)
    for k, c in ((1, "RBBB"), (2, "LBBB")):
        s = _graded(rng, bbb == k, subthreshold)
        s[(bbb != 0) & (bbb != k)] = 0.0
        s[(bbb == 0) & (sub_kind != k - 1)] = 0.0
        sev[c] = s[patient]
    strain = np.where(sev["LVH"] >= 1, STRAIN_RISK, 1.0)
    for c in ("STD", "TINV"):
        sev[c] = _graded(rng, rng.random(n) < prevalence[c] * strain, subthreshold)
    for c in GRADED:
        lab[c] = sev[c] >= 1.0
    return np.stack([lab[c] for c in CLASSES_ALL], 1), sev


def annotate(truth: np.ndarray, label_noise: float, rng: np.random.Generator) -> np.ndarray:
    """The labels an annotator gives: per class, round(r * n_pos) positives dropped, as many negatives added."""
    if not 0.0 <= label_noise < 0.5:
        raise ValueError(f"synth label_noise must be in [0, 0.5), got {label_noise}")
    out = truth.astype(bool).copy()
    for j in range(truth.shape[1]):
        pos, neg = np.flatnonzero(truth[:, j]), np.flatnonzero(~truth[:, j].astype(bool))
        k = min(int(round(label_noise * len(pos))), len(neg))
        if k:
            out[rng.choice(pos, k, replace=False), j] = False
            out[rng.choice(neg, k, replace=False), j] = True
    return out


def task_labels(labels_all: np.ndarray, task: str) -> tuple[np.ndarray, list[str]]:
    """Project the "all" matrix onto a task: superdiagnostic groups as in PTB-XL, or the rhythm classes."""
    col = {c: labels_all[:, i].astype(bool) for i, c in enumerate(CLASSES_ALL)}
    if task == "all":
        return labels_all.astype(np.uint8), list(CLASSES_ALL)
    if task == "rhythm":
        return np.stack([col[c] for c in (*RHYTHMS, "PVC")], 1).astype(np.uint8), [*RHYTHMS, "PVC"]
    if task == "superdiagnostic":
        mi, sttc = col["IMI"] | col["AMI"], col["STD"] | col["TINV"]
        cd, hyp = col["RBBB"] | col["LBBB"], col["LVH"]
        norm = ~(mi | sttc | cd | hyp)
        return np.stack([norm, mi, sttc, cd, hyp], 1).astype(np.uint8), list(SUPERDIAGNOSTIC)
    raise ValueError(f"unknown synth task {task!r}; expected one of {SYNTH_TASKS}")
