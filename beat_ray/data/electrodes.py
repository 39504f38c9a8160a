"""Noise at the electrodes, scaled to an SNR as nst(1) defines it (issue J, part 1).

Why at the electrodes: recording noise enters where an electrode meets the skin, and every lead that
shares an electrode shares its noise. Noise drawn per lead breaks Einthoven's law and lets a 12-lead
consensus average away noise that real recordings do not let it average. Here noise is drawn on the
nine electrode potentials (RA, LA, LL, V1-V6) and the 12 leads are formed by the standard lead equations
(`LEAD_MATRIX`), so I + III = II and aVR + aVL + aVF = 0 hold for the noise exactly.

Spatial structure of each type:
  bw   respiration and movement: one source shared by the limb electrodes and one by the chest
       electrodes, each electrode with its own coupling gain, plus a small independent part
  em   electrode motion: one or two electrodes at a time
  ma   muscle: broadband, independent per electrode
  wgn  white, independent per electrode
  pl   mains: common mode on every electrode, turned into lead noise by an electrode-impedance mismatch
       of a few per cent (an ideal common-mode rejection would cancel it completely)

SNR as nst defines it (WFDB Applications Guide, nst(1), "Signal-to-noise ratios"; nst.c and sigamp.c):
the signal amplitude A is the trimmed mean (5 % cut at each end) of the QRS peak-to-peak amplitudes
within 50 ms of each R peak, the noise amplitude is the trimmed mean of the noise's RMS about the mean
in consecutive 1-s windows, and the noise gain is nsr·A/RMS with nsr = 10^(−SNR/20)·√2/4, i.e.
SNR = 10 log10((A²/8) / RMS²): the power of a sine with the QRS's peak-to-peak amplitude over the noise
power. nst scales each channel on its own; with 12 leads tied by the lead equations one gain must
serve the whole record, so `record_snr` sums both powers over the leads before the ratio.

One realisation per (record, type): it is seeded by (seed, record key, type) and only its gain depends on
the SNR, so curves over SNR are smooth and every model sees the same noise.
"""
from __future__ import annotations

import numpy as np
from scipy import signal as sps

from beat_ray.data.noise import synth_noise

ELECTRODES: tuple[str, ...] = ("RA", "LA", "LL", "V1", "V2", "V3", "V4", "V5", "V6")
LIMB, CHEST = slice(0, 3), slice(3, 9)
ELECTRODE_TYPES: tuple[str, ...] = ("bw", "ma", "em", "pl", "wgn")
MAINS_HZ = 50.0                      # PTB-XL was recorded in Germany; pass mains=60.0 for the Americas
QRS_HALF_S = 0.05                    # sigamp's default window: 50 ms either side of the R peak


def _lead_matrix() -> np.ndarray:
    """(12, 9): leads I II III aVR aVL aVF V1-V6 from electrode potentials RA LA LL V1-V6."""
    m = np.zeros((12, 9))
    ra, la, ll = np.eye(9)[0], np.eye(9)[1], np.eye(9)[2]
    m[0], m[1], m[2] = la - ra, ll - ra, ll - la
    m[3], m[4], m[5] = ra - (la + ll) / 2, la - (ra + ll) / 2, ll - (ra + la) / 2
    wct = (ra + la + ll) / 3                                      # Wilson's central terminal
    for i in range(6):
        m[6 + i] = np.eye(9)[3 + i] - wct
    return m


LEAD_MATRIX = _lead_matrix()


def leads_from_electrodes(e: np.ndarray) -> np.ndarray:
    """(..., 9, T) electrode potentials -> (..., 12, T) leads."""
    return np.einsum("le,...et->...lt", LEAD_MATRIX, e)


def _trimmed_mean(v: np.ndarray) -> float:
    v = np.sort(v[np.isfinite(v)])
    lo = len(v) // 20                                             # sigamp: jlow = n/20, jhigh = n - jlow
    return float(v[lo:len(v) - lo].mean()) if len(v) else float("nan")


def qrs_amplitude(x: np.ndarray, r_peaks: np.ndarray, fs: float) -> np.ndarray:
    """(12,) trimmed-mean QRS peak-to-peak amplitude per lead (sigamp -a), NaN for an absent lead."""
    h = max(1, round(QRS_HALF_S * fs))
    r = np.asarray(r_peaks, int)
    r = r[(r - h >= 0) & (r + h < x.shape[-1])]
    if not len(r):
        raise ValueError("no R peak with 50 ms of signal on both sides: nst's SNR needs QRS amplitudes")
    win = np.stack([x[:, p - h:p + h + 1] for p in r], axis=1)   # (12, beats, 2h+1)
    return np.array([_trimmed_mean(np.ptp(w, axis=-1)) for w in win])


def noise_rms(n: np.ndarray, fs: float) -> np.ndarray:
    """(12,) trimmed-mean RMS about the mean in consecutive 1-s windows (sigamp -r), per lead."""
    w = max(1, int(round(fs)))
    k = n.shape[-1] // w
    seg = n[:, :k * w].reshape(len(n), k, w) if k else n[:, None, :]
    rms = np.sqrt(((seg - seg.mean(-1, keepdims=True)) ** 2).mean(-1))
    return np.array([_trimmed_mean(r) for r in rms])


def record_snr(clean: np.ndarray, noise: np.ndarray, r_peaks: np.ndarray, fs: float,
               noise_fs: float | None = None) -> float:
    """nst's SNR of one record's noise (dB), powers summed over the present leads (an absent, NaN lead has
    no QRS amplitude). `noise_fs`: the noise's own rate where it differs (powerline added above fs)."""
    a, rms = qrs_amplitude(clean, r_peaks, fs), noise_rms(noise, noise_fs or fs)
    ok = np.isfinite(a) & np.isfinite(rms)
    return float(10 * np.log10((a[ok] ** 2 / 8).sum() / (rms[ok] ** 2).sum()))


def _segments(src: np.ndarray, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """k random length-n segments of a real noise record (channels, T'), tiled when shorter."""
    src = np.atleast_2d(np.asarray(src, np.float64))
    if src.shape[-1] < n:
        src = np.tile(src, (1, int(np.ceil(n / src.shape[-1]))))
    rows = rng.integers(0, src.shape[0], size=k)
    starts = rng.integers(0, src.shape[-1] - n + 1, size=k)
    return np.stack([src[r, s:s + n] for r, s in zip(rows, starts)])


def electrode_noise(kind: str, n: int, fs: float, rng: np.random.Generator, nstdb: np.ndarray | None = None,
                    mains: float = MAINS_HZ, seen: np.ndarray | None = None) -> np.ndarray:
    """(9, n) unit-free noise on the electrodes with the type's spatial structure (module docstring).

    `nstdb`: a real NSTDB noise record of this type (load_nstdb) to draw the waveforms from instead of
    generating them (bw, em and ma only). `seen` (9,) bool: the electrodes the record's present leads see;
    electrode motion moves one of those (on a 2-lead Holter record, not V3 that no lead measures)."""
    if kind not in ELECTRODE_TYPES:
        raise ValueError(f"unknown noise type {kind!r}; expected one of {ELECTRODE_TYPES}")
    if nstdb is not None and kind not in ("bw", "em", "ma"):
        raise ValueError(f"NSTDB has no {kind!r} noise record (only bw, em and ma)")

    def wave(k: int) -> np.ndarray:
        return _segments(nstdb, k, n, rng) if nstdb is not None else synth_noise(kind, (k, n), fs, rng)

    e = np.zeros((9, n))
    if kind == "bw":
        shared = wave(2)
        e[LIMB] = rng.uniform(0.5, 1.5, (3, 1)) * shared[0]
        e[CHEST] = rng.uniform(0.5, 1.5, (6, 1)) * shared[1]
        e += 0.3 * wave(9)
    elif kind == "em":
        pool = np.flatnonzero(seen) if seen is not None and seen.any() else np.arange(9)
        hit = rng.choice(pool, size=min(int(rng.integers(1, 3)), len(pool)), replace=False)
        e[hit] = wave(len(hit))
    elif kind in ("ma", "wgn"):
        e = wave(9)
    else:                                                          # pl: common mode, impedance mismatch
        if fs < 2.5 * mains:
            raise ValueError(f"powerline noise at {mains:g} Hz needs fs >= {2.5 * mains:g} Hz, got {fs:g}; "
                             "add_electrode_noise adds it at a higher rate and decimates")
        t = np.arange(n) / fs
        ph = rng.uniform(0, 2 * np.pi)
        cm = np.sin(2 * np.pi * mains * t + ph) + 0.3 * np.sin(2 * np.pi * 2 * mains * t + 2 * ph) \
            * (2 * mains < fs / 2)
        e = (1.0 + rng.normal(0.0, 0.05, (9, 1))) * cm
    return e


def record_noise(kind: str, n: int, fs: float, rng: np.random.Generator, nstdb: np.ndarray | None = None,
                 mains: float = MAINS_HZ, seen: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(12, n) lead noise at the amplitude it has at the electrodes, and (12, n) what the recorder keeps.

    They differ only for powerline at a rate that cannot carry the mains: it is added at 500 Hz (an integer
    multiple of fs, at least 2.5 x mains), as PTB-XL's 100-Hz records were made from 500-Hz ones, and
    decimated with the standard anti-alias filter (scipy's decimate: 8th-order Chebyshev I at 0.8 of the
    new Nyquist, zero phase), which removes it. Its SNR is then set on the electrode noise, before the filter."""
    if kind == "pl" and fs < 2.5 * mains:
        q = int(np.ceil(max(2.5 * mains, 500.0) / fs))
        pad = int(np.ceil(2 * fs))          # 2 s either side, cut after: the filter's edge transients stay there
        hi = leads_from_electrodes(electrode_noise(kind, (n + 2 * pad) * q, fs * q, rng, mains=mains))
        lo = sps.decimate(hi, q, ftype="iir", zero_phase=True, axis=-1)[:, pad:pad + n]
        return hi[:, pad * q:(pad + n) * q], lo
    lead = leads_from_electrodes(electrode_noise(kind, n, fs, rng, nstdb, mains, seen))
    return lead, lead


def add_electrode_noise(signals: np.ndarray, kind: str, snr_db: float, fs: float, r_peaks: list[np.ndarray],
                        seed: int = 0, keys: list[int] | None = None, nstdb: np.ndarray | None = None,
                        mains: float = MAINS_HZ) -> np.ndarray:
    """signals (N, 12, T) plus electrode noise at nst's `snr_db`; absent (NaN) leads stay NaN.

    r_peaks[i]: R-peak samples of clean record i (the QRS amplitude needs them). keys[i] (default i) names
    record i's realisation, so a record gets the same noise in any batch and at every SNR."""
    x = np.asarray(signals, np.float64)
    if x.ndim != 3 or x.shape[1] != 12:
        raise ValueError(f"signals must be (N, 12, T), got {x.shape}")
    if len(r_peaks) != len(x):
        raise ValueError(f"r_peaks has {len(r_peaks)} entries for {len(x)} records")
    keys = list(range(len(x))) if keys is None else list(keys)
    out = np.empty_like(x)
    for i, rec in enumerate(x):
        rng = np.random.default_rng([seed, int(keys[i]), ELECTRODE_TYPES.index(kind)])
        present = np.isfinite(rec).any(-1)
        at_electrodes, kept = record_noise(kind, rec.shape[-1], fs, rng, nstdb, mains,
                                           seen=(LEAD_MATRIX[present] != 0).any(0))
        unscaled = record_snr(rec, at_electrodes, r_peaks[i], fs, fs * at_electrodes.shape[-1] / rec.shape[-1])
        # the gain that moves the realisation's own SNR to the request: nst.c's nsr·A/RMS, summed over leads
        out[i] = rec + 10.0 ** ((unscaled - snr_db) / 20.0) * kept
    return out.astype(np.float32)
