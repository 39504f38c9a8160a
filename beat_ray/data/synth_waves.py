"""Physiology of the embedded `synth` dataset: one beat as a 3-D cardiac dipole, and the leads.

Why a dipole: every lead of a real ECG is (to first order) a projection of one time-varying
heart vector, so Einthoven's law (I + III = II, aVR + aVL + aVF = 0) and the spatial patterns a
cardiologist reads (inferior vs anterior MI, RBBB vs LBBB by V1 vs V6, P largest in II) come
for free once each wave has a *direction*. Each beat is ECGSYN-style (McSharry 2003): a sum of
Gaussians in time, one per wave, here each with its own 3-D vector in Frank X, Y, Z
(X right-to-left, Y head-to-foot, Z front-to-back). A disease is a change of those vectors:
an ST vector pointing inferiorly is inferior ST elevation, a slow rightward-anterior terminal
wave is RBBB's R', and so on. See /work/shared/docs/ecg-facts.md for the numbers used.

This module holds the wave table (`beat_templates`) and the lead geometry (Dower 1980);
`synth.py` samples labels and rhythms, places beats and renders records.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Dower (1980) Frank (X, Y, Z) -> the 8 independent leads I, II, V1..V6. The other 4 are derived.
DOWER = np.array([[0.632, -0.235, 0.059], [0.235, 1.066, -0.132],
                  [-0.515, 0.157, -0.917], [0.044, 0.164, -1.387], [0.882, 0.098, -1.277],
                  [1.213, 0.127, -0.601], [1.125, 0.127, -0.086], [0.831, 0.076, 0.230]],
                 dtype=np.float32)

WAVES = ("P", "Q", "R", "S", "R2", "ST", "T", "N")   # R2: RBBB's R' or LBBB's notch / PVC's 2nd lobe
P, Q, R, S, R2, ST, T, N = range(len(WAVES))      # N: a QRS notch whose place and sign vary beat to beat
QRS_WAVES = (Q, R, S, R2)
NORMAL_BEAT, PVC_BEAT = 0, 1                      # beat-type codes (also the extras `beat_types`)


def unit(v) -> np.ndarray:
    """Normalise along the last axis (length 3)."""
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def frontal(deg: np.ndarray | float, z: float = 0.0) -> np.ndarray:
    """Unit vector(s) at `deg` in the frontal plane (0 = toward lead I, +90 = toward the feet), plus z."""
    a = np.deg2rad(np.asarray(deg, dtype=np.float64))
    return unit(np.stack([np.cos(a), np.sin(a), np.full_like(a, z)], -1))


# Base directions (before each patient's rotation). Checked against the Dower rows:
U_SEPTAL_Q = unit([-0.7, 0.1, -0.7])       # septum depolarises left->right, anteriorly: q in I/V6, r in V1
U_R = frontal(45.0, z=0.35)              # main QRS: left, inferior, posterior -> R grows V1..V5
U_S = unit([-0.4, -0.5, 0.75])             # terminal forces: right, superior, posterior
U_T = unit([0.7, 0.6, -0.25])              # T concordant with QRS: upright in I, II, V2-V6
U_INFERIOR = unit([-0.3, 1.0, 0.0])        # ~+107 deg: up in II, III, aVF; reciprocal down in I, aVL
U_ANTERIOR = unit([0.45, 0.1, -1.0])       # anterior (slightly left): up in V1-V4
U_STD = -unit([0.8, 0.6, -0.2])            # subendocardial ischaemia: down in I, II, V3-V6, up in aVR
U_RBBB = unit([-0.6, 0.05, -0.8])          # late right-anterior forces: R' in V1, slurred S in I/V6
U_LBBB = unit([0.8, 0.25, 0.55])           # slow leftward-posterior: broad R in I/aVL/V5-6, QS in V1
U_FWAVE = unit([-0.18, 0.72, -0.64])       # AF f-waves, between the II and V1 lead vectors
P_AXIS_DEG = 55.0                        # in Dower geometry II and aVF tie at ~70 deg, so 55 keeps II largest


def derive_12(leads8: np.ndarray) -> np.ndarray:
    """(..., 8, T) I, II, V1..V6 -> (..., 12, T) in standard order, limb leads by Einthoven/Goldberger."""
    i, ii, v = leads8[..., 0, :], leads8[..., 1, :], leads8[..., 2:, :]
    limb = np.stack([i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2], axis=-2)
    return np.concatenate([limb, v], axis=-2)


def rotations(rng: np.random.Generator, n: int, sd_deg: float) -> np.ndarray:
    """(n, 3, 3) rotations by N(0, sd) degrees about uniformly random axes (Rodrigues)."""
    axis = unit(rng.standard_normal((n, 3)))
    th = np.deg2rad(rng.normal(0.0, sd_deg, n))[:, None, None]
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - k.transpose(0, 2, 1)
    return np.eye(3) + np.sin(th) * k + (1 - np.cos(th)) * (k @ k)


def rot_z(deg: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations in the frontal plane (positive = clockwise on the hexaxial chart, toward +90)."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    out = np.zeros((len(a), 3, 3))
    out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1], out[:, 2, 2] = c, -s, s, c, 1.0
    return out


@dataclass
class Templates:
    """Per record, two beat templates (0 = the record's own conducted beat, 1 = its PVC).

    `vec` is each wave's amplitude (mV) times direction; `cen`/`sig` its centre and width in
    seconds relative to the beat's R time. ST and T timing depends on the beat's RR interval
    (Bazett), so they are set per beat from `qrs_on`, `qrs_off`, `qtc` and `sig_t`.
    """

    vec: np.ndarray       # (n, 2, W, 3)
    cen: np.ndarray       # (n, 2, W)
    sig: np.ndarray       # (n, 2, W)
    qrs_on: np.ndarray    # (n, 2)
    qrs_off: np.ndarray   # (n, 2)
    qtc: np.ndarray       # (n, 2)
    sig_t: np.ndarray     # (n, 2)
    qrs_ms: np.ndarray    # (n,) true QRS duration of the conducted beat


def beat_templates(rng: np.random.Generator, patient: np.ndarray, lab: dict[str, np.ndarray],
                   sev: dict[str, np.ndarray], axis_sd: float = 25.0, tilt_sd: float = 10.0,
                   habitus_sd: float = 0.2, notch_mv: float = 0.3) -> Templates:
    """Wave tables for every record; geometry and chronic disease amplitudes are drawn per patient.

    `patient` maps record -> patient index; `lab` maps class name -> (n,) bool ground truth per record;
    `sev` maps each graded class to its severity (synth_labels: >= 1 the condition, (0, 1) sub-threshold),
    and every finding's size grows with it, so labels sit on a continuum as real ones do.
    """
    n, n_pat = len(patient), int(patient.max()) + 1
    W = len(WAVES)
    u = lambda lo, hi: rng.uniform(lo, hi, n_pat)[patient]
    ur = lambda lo, hi: rng.uniform(lo, hi, n)
    # each patient's heart axis (frontal shift + 3-D tilt) and habitus (amplitude scale: chest wall,
    # body size); each record adds electrode-placement jitter
    rot_p = (rot_z(np.clip(rng.normal(0, axis_sd, n_pat), -2.5 * axis_sd, 2.5 * axis_sd))
             @ rotations(rng, n_pat, tilt_sd))[patient]
    rot = rotations(rng, n, 3.0) @ rot_p
    scale = (np.exp(rng.normal(0, habitus_sd, n_pat))[patient] * np.exp(rng.normal(0, 0.06, n)))[:, None]
    turn = lambda v: np.einsum("nij,...j->ni", rot, v)

    vec = np.zeros((n, 2, W, 3))
    cen = np.zeros((n, 2, W))
    sig = np.full((n, 2, W), 0.01)
    # ---- the conducted beat (template 0) ----------------------------------------------------------
    lvh, rbbb, lbbb = sev["LVH"], sev["RBBB"], sev["LBBB"]
    w_lbbb = np.clip(lbbb, 0, 1)                                   # how far the LBBB pattern has developed
    d_qrs = u(0.08, 0.10) + 0.012 * np.minimum(lvh, 2)           # normal QRS duration (s); LVH widens it
    on = -d_qrs / 2
    r_amp = u(1.1, 1.6) * (1 + 0.6 * lvh)                         # voltage grows with LV mass
    s_amp = u(0.25, 0.45) * (1 + 0.6 * lvh)
    sig[:, 0, Q], sig[:, 0, R], sig[:, 0, S] = d_qrs / 10, d_qrs / 8, d_qrs / 10
    # pathological Q (old/evolving MI): wider and pointing away from the infarcted wall; small
    # sub-threshold q waves (as healthy hearts have in III) come from s < 1
    mi = np.clip(np.maximum(sev["IMI"], sev["AMI"]), 0, 1.5)
    sig[:, 0, Q] = sig[:, 0, Q] + 0.002 * mi
    q_vec = (u(0.08, 0.15) * (1 - w_lbbb))[:, None] * turn(U_SEPTAL_Q) \
        - (u(0.25, 0.45) * sev["IMI"])[:, None] * turn(U_INFERIOR) \
        - (u(0.3, 0.5) * sev["AMI"])[:, None] * turn(U_ANTERIOR)
    vec[:, 0, Q] = q_vec
    cen[:, 0, Q] = on + 2 * sig[:, 0, Q]
    r_dir = unit((1 - w_lbbb)[:, None] * turn(U_R) + w_lbbb[:, None] * turn(U_LBBB))
    vec[:, 0, R] = r_amp[:, None] * r_dir
    vec[:, 0, S] = ((1 - w_lbbb) * s_amp)[:, None] * turn(U_S)
    cen[:, 0, S] = on + d_qrs - 2 * sig[:, 0, S]
    # bundle-branch blocks: the QRS widens with severity (120 ms at s = 1) and ends with a slow lobe (R2)
    d_bbb = 0.095 + 0.025 * np.maximum(rbbb, lbbb) + 0.01 * (lbbb > 0)
    sig[:, 0, R2] = u(0.016, 0.02)
    vec[:, 0, R2] = (u(0.5, 0.8) * np.minimum(rbbb, 1.5))[:, None] * turn(U_RBBB)
    sig[:, 0, R] = sig[:, 0, R] + w_lbbb * (u(0.02, 0.024) - sig[:, 0, R])   # LBBB: broad notched R
    vec[:, 0, R2] = vec[:, 0, R2] + 0.6 * w_lbbb[:, None] * vec[:, 0, R]
    on = np.where(lbbb > 0, (1 - w_lbbb) * on - w_lbbb * 2 * sig[:, 0, R], on)
    cen[:, 0, R2] = np.where((rbbb > 0) | (lbbb > 0), on + d_bbb - 2 * sig[:, 0, R2], 0.0)
    # LVH's fragmented QRS: a narrow notch, its size growing with severity; place and sign are per beat
    sig[:, 0, N] = 0.008
    vec[:, 0, N] = (notch_mv * np.minimum(lvh, 2))[:, None] * unit(rng.standard_normal((n_pat, 3)))[patient]
    # P wave: its own axis (~+55 deg, so it is largest in II); none in AF
    p_dir = frontal(np.clip(rng.normal(P_AXIS_DEG, 5, n_pat), 44, 64), z=0.05)[patient]
    sig[:, 0, P] = u(0.02, 0.025)
    vec[:, 0, P] = (u(0.10, 0.18) * ~lab["AFIB"])[:, None] * p_dir
    cen[:, 0, P] = on - u(0.13, 0.19) + 2 * sig[:, 0, P]           # PR interval 130-190 ms
    # ST and T: vectors sum over all present conditions (that is what makes co-occurrence natural)
    st = (u(0.15, 0.3) * sev["IMI"])[:, None] * turn(U_INFERIOR) \
        + (u(0.18, 0.32) * sev["AMI"])[:, None] * turn(U_ANTERIOR) \
        + (ur(0.1, 0.2) * sev["STD"])[:, None] * turn(U_STD) \
        - (u(0.08, 0.15) * w_lbbb)[:, None] * turn(U_LBBB)
    t_norm = u(0.3, 0.5)[:, None] * turn(U_T)
    t = (1 - w_lbbb)[:, None] * t_norm - (w_lbbb * u(0.3, 0.5))[:, None] * turn(U_LBBB)   # discordant T
    t = t - (0.25 * np.minimum(rbbb, 1))[:, None] * turn(U_RBBB)                          # T down in V1-V2
    # T inversion: flattened below threshold, inverted (primary T change) above it
    t = t - (np.minimum(sev["TINV"], 2.0) * ur(0.9, 1.1))[:, None] * t_norm
    vec[:, 0, ST], vec[:, 0, T] = st, t
    # ---- the PVC (template 1): ectopic focus per patient, wide bizarre QRS, T opposite, no P ------
    focus = unit(rng.standard_normal((n_pat, 3)))[patient]
    lobe2 = unit(focus + 0.8 * unit(rng.standard_normal((n_pat, 3)))[patient])
    sig[:, 1, R], sig[:, 1, R2], sig[:, 1, T] = u(0.028, 0.034), 0.025, 0.06
    vec[:, 1, R] = u(1.2, 2.0)[:, None] * focus
    vec[:, 1, R2] = 0.6 * u(1.0, 1.3)[:, None] * lobe2
    cen[:, 1, R2] = 0.04
    vec[:, 1, T] = -u(0.4, 0.6)[:, None] * focus
    qrs_on = np.stack([_qrs_start(vec[:, 0], cen[:, 0], sig[:, 0]), -2 * sig[:, 1, R]], 1)
    qrs_off = np.stack([_qrs_end(vec[:, 0], cen[:, 0], sig[:, 0]), np.full(n, 0.04 + 2 * 0.025)], 1)
    qtc = np.stack([u(0.38, 0.43), u(0.44, 0.48)], 1)
    sig_t = np.stack([u(0.04, 0.05), np.full(n, 0.06)], 1)
    vec = vec * scale[:, :, None, None]
    qrs_ms = 1000 * (qrs_off[:, 0] - qrs_on[:, 0])
    return Templates(vec.astype(np.float32), cen.astype(np.float32), sig.astype(np.float32),
                     qrs_on, qrs_off, qtc, sig_t, qrs_ms.astype(np.float32))


def _present(vec: np.ndarray) -> np.ndarray:
    return np.linalg.norm(vec[:, QRS_WAVES], axis=-1) > 1e-6


def _qrs_start(vec: np.ndarray, cen: np.ndarray, sig: np.ndarray) -> np.ndarray:
    """Earliest centre - 2 sigma over the QRS waves that are present (the 95% support of each Gaussian)."""
    c, s = cen[:, QRS_WAVES], sig[:, QRS_WAVES]
    return np.where(_present(vec), c - 2 * s, np.inf).min(1)


def _qrs_end(vec: np.ndarray, cen: np.ndarray, sig: np.ndarray) -> np.ndarray:
    c, s = cen[:, QRS_WAVES], sig[:, QRS_WAVES]
    return np.where(_present(vec), c + 2 * s, -np.inf).max(1)
