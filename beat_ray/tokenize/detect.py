"""12-lead R-peak detection: one set of beat positions per record, shared by all leads.

Why a lead-combined detector instead of HeartLang's `xqrs_detect` on lead I:
  * a noisy or low-amplitude lead I loses beats; a consensus of all usable leads averages
    independent noise away (12 leads with per-lead noise gain up to ~10 dB of SNR);
  * `xqrs_detect` takes 3 s per 30 min and `neurokit2.ecg_peaks` has a per-call overhead
    that dominates 10-s records; here the filters run once over a whole (N, 12, T) batch.

Pipeline (per batch, vectorised over records and leads):
  1. lead quality: non-finite, flat and clipped leads are left out of the consensus;
  2. block-average to a detection rate of ~100-200 Hz (cost independent of fs), band-pass
     the QRS band (8-20 Hz), square: per-lead QRS energy;
  3. normalise each lead's energy by its mean, cap it (one lead's artefact cannot
     dominate), average over usable leads, smooth over ~a QRS width: the consensus envelope;
     after a first pick, re-weight the leads by their QRS-to-background ratio and pick again;
  4. QRS regions are where the envelope exceeds 1.5x its 1-s moving mean (the rule of
     neurokit2's default `ecg_findpeaks`); one beat per region, with a floor, a 0.25-s
     refractory and the Pan-Tompkins T-wave rule (see `_pick`);
     the re-weighted pass is kept only if it raises the beats' clarity (see clarity);
  5. search-back in RR gaps of > 1.5 median RR for beats the weighting hid (PVCs); then drop
     detections under half an RR from a neighbour that do not look like the record's beats
     (electrode-motion artefacts, see prune.py);
  6. refine each beat to the extremum (of the dominant polarity) of the dominant lead at
     full rate;
  7. from 120 Hz, a record rejected, or whose beats follow sharp pulses at a fixed delay, is
     searched for pacemaker spikes; where there are, they are blanked and steps 2-6 run again
     (pace.py: else the spike, not the paced QRS, is picked in some beats).
Records the detector cannot trust get a flag "<key>: <detail>" instead of peaks.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import signal as sps
from scipy.ndimage import uniform_filter1d

from beat_ray.tokenize.pace import PACE_MIN_FS, blank_full_rate, pacing_suspects, reject_pace_pulses
from beat_ray.tokenize.prune import prune_artefacts
from beat_ray.tokenize.quality import (  # noqa: F401  (lead_quality: re-exported for callers of detect)
    beat_flag,
    clarity,
    fast_median,
    flat_clipped,
    lead_quality,
    off_beat,
    rate_flag,
    record_flag,
)
from beat_ray.tokenize.select import select as select_train

FS_MIN, FS_MAX = 50.0, 20_000.0   # outside: a wrong sampling rate, not a different ECG
BAND = (3.0, 15.0)                # band (Hz) of the slope whose energy makes the envelope
HF_BAND = (8.0, 20.0)             # ... and of the energy that tells a QRS from a T wave (see _pick)
WIDE_REGION_S = 0.2               # a supra-threshold region longer than this holds more than a QRS
TWAVE_HF_FRAC = 0.25              # a wave this soon after a beat with under this share of its HF_BAND energy
                                  # is its T wave, however tall (hyperkalaemia: T above R)
SLOPE = True                      # slope (first difference) keeps wide PVCs, drops T waves
REFRACTORY_S = 0.25
TWAVE_S = 0.36                    # Pan-Tompkins: a small wave this soon after a beat is its T wave
TWAVE_FRAC = 0.1                  # ... "small" = under this share of its envelope height (synth PVCs at 0.3 s
                                  # coupling reach only 0.2, so the classic 0.5 would drop them)
FLOOR = 0.1                       # candidates below this share of the median QRS height are not beats
EDGE_FLOOR = 0.3                  # the same for a candidate cut by the start or end of the record
ENERGY_CAP = 50.0                 # per-lead normalised energy cap in the consensus
SEARCH_GAP = 1.5                  # search-back (see _search_back) in RR gaps over this x median RR,
SEARCH_T_S, SEARCH_AFTER = 0.25, 0.45   # from max(0.25 s, 0.45 RR) after the previous beat
SEARCH_BEFORE = 0.75              # to 0.75 RR before the next (PVC coupling 0.53-0.72 RR, pause 1.2-1.5 RR),
SEARCH_FRAC = 0.2                 # for a peak of 0.2 x the median beat height (T waves there: 99% < 0.2;
                                  # 0.15 finds more PVCs but also T waves)
EDGE_S = 0.01                     # _refine: an extremum this close to its window's edge is on a slope
LEAD_WEIGHT_MIN = 0.1             # leads under this share of the clearest lead's QRS ratio are left out


def check_fs(fs: float) -> float:
    """A sampling rate that cannot be an ECG rate is a caller error, not a record flag."""
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise ValueError(f"sampling rate must be a number, got {fs!r}") from None
    if not np.isfinite(fs) or not FS_MIN <= fs <= FS_MAX:
        raise ValueError(f"implausible sampling rate fs={fs!r} Hz (expected {FS_MIN:g}-{FS_MAX:g})")
    return fs


def _decimate(x: np.ndarray, fs: float) -> tuple[np.ndarray, int, float]:
    """Block-average by q = fs // 100 (a cheap anti-alias); the QRS band survives at >= 100 Hz.

    As an einsum over (blocks, q): numpy's mean over a length-q last axis is ~4x slower (its
    inner loop is q long), `@` is 2x slower and takes BLAS threads; and this is the one
    full-rate pass of the detector.
    """
    q = max(1, int(fs // 100))
    if q == 1:
        return x, 1, fs
    t = x.shape[-1] // q * q
    blocks = np.ascontiguousarray(x[..., :t]).reshape(-1, q)
    xd = np.einsum("ij,j->i", blocks, np.full(q, 1.0 / q, blocks.dtype)).reshape(*x.shape[:-1], t // q)
    return xd, q, fs / q


@lru_cache(maxsize=32)
def _band_sos(fd: float, band: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, int]:
    """(sos, its steady-state zi, filtfilt pad length) of the QRS band-pass at rate fd.

    Cached: the design costs ~1.5 ms, and `sps.sosfiltfilt` recomputes zi (a linear solve)
    on every call, ~0.4 ms, more than the filtering of a 10-s record; see _filtfilt.
    """
    sos = sps.butter(2, [band[0] / (fd / 2), min(band[1], 0.45 * fd) / (fd / 2)], btype="band", output="sos")
    zi = sps.sosfilt_zi(sos)
    ntaps = 2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return sos, zi, 3 * ntaps


def _filtfilt(x: np.ndarray, fd: float, band: tuple[float, float]) -> np.ndarray:
    """`sps.sosfiltfilt(sos, x, axis=-1)` (odd extension, default pad), same result, with
    the filter's zi and pad from the cache instead of recomputed per call."""
    sos, zi, pad = _band_sos(fd, band)
    if x.shape[-1] <= pad:
        return sps.sosfiltfilt(sos, x, axis=-1)           # scipy's own error / short-input path
    ext = np.concatenate([2 * x[..., :1] - x[..., pad:0:-1], x,
                          2 * x[..., -1:] - x[..., -2:-pad - 2:-1]], axis=-1)
    zi = zi.reshape(zi.shape[0], *([1] * (x.ndim - 1)), 2)
    y, _ = sps.sosfilt(sos, ext, axis=-1, zi=zi * ext[..., :1])
    y, _ = sps.sosfilt(sos, y[..., ::-1], axis=-1, zi=zi * y[..., -1:])
    return y[..., ::-1][..., pad:-pad]


def qrs_energy(x: np.ndarray, fs: float) -> tuple[np.ndarray, int, float]:
    """Energy of the band-passed slope at the detection rate, each lead scaled to mean 1."""
    xd, q, fd = _decimate(x, fs)
    return _energy(xd, fd), q, fd


def _energy(xd: np.ndarray, fd: float, band: tuple[float, float] = BAND) -> np.ndarray:
    """qrs_energy of signals already at the detection rate fd."""
    return _energy_bp(xd, fd, band)[0]


def _energy_bp(xd: np.ndarray, fd: float, band: tuple[float, float] = BAND) -> tuple[np.ndarray, np.ndarray]:
    """_energy and the band-passed signal it came from (so callers never filter twice)."""
    bp = _filtfilt(xd, fd, band)
    d = bp.astype(np.float32, copy=False)
    if SLOPE:
        d = np.diff(d, axis=-1, prepend=d[..., :1])
    e = d * d
    e /= e.mean(axis=-1, keepdims=True) + 1e-12
    np.minimum(e, ENERGY_CAP, out=e)
    return e, bp


def _pick(env: np.ndarray, fd: float, avg: np.ndarray | None = None, hf: np.ndarray | None = None) -> np.ndarray:
    """One beat per supra-threshold region of the envelope.

    Beyond neurokit2's local rule (1.5x the 1-s moving mean): a floor of FLOOR x the median
    region height, so a long quiet stretch (a pause, the start of a record) does not turn
    P/T waves or noise into beats; a 0.25-s refractory keeping the one with more energy in
    HF_BAND (`hf`; the larger envelope without it): a tall peaked T wave can out-slope its QRS
    in BAND but not above 8 Hz; and the Pan-Tompkins T-wave rule (within 0.36 s of a beat and
    under TWAVE_FRAC of its height: a T wave).
    """
    if avg is None:
        avg = _moving_mean(env, fd)
    qrs = np.concatenate(([False], env > 1.5 * avg, [False]))
    edges = np.flatnonzero(qrs[1:] != qrs[:-1])
    starts, ends = edges[0::2], edges[1::2]
    if len(starts) == 0:
        return np.zeros(0, np.int64)
    lens = ends - starts
    # short regions are noise spikes, except at the record's ends where a QRS is cut in half
    keep = (lens >= max(1, 0.4 * lens.mean())) | (starts == 0) | (ends == len(env))
    if hf is not None and not keep.all():
        # ... unless it is the sharpest kind of region: a narrow QRS beside wide, tall T waves
        hf_top = np.array([hf[s:e].max() for s, e in zip(starts.tolist(), ends.tolist())])
        keep |= hf_top >= 0.5 * np.percentile(hf_top, 90)
    # the region's beat: its highest point, or its sharpest (hf) in a region longer than a QRS, which can
    # hold a QRS and its tall T wave
    wide = round(WIDE_REGION_S * fd)
    cand = np.array([s + int((hf if hf is not None and e - s > wide else env)[s:e].argmax())
                     for s, e in zip(starts[keep].tolist(), ends[keep].tolist())], np.int64)
    # a QRS cut by the record's ends must still look like one (filter edge transients do not)
    at_edge = ((starts == 0) | (ends == len(env)))[keep]
    cand = cand[env[cand] >= np.where(at_edge, EDGE_FLOOR, FLOOR) * fast_median(env[cand])]
    refr, twave = REFRACTORY_S * fd, TWAVE_S * fd
    heights = env[cand].tolist()
    peaks: list[int] = []
    hs: list[float] = []
    sharp = (hf[cand] if hf is not None else env[cand]).tolist()
    last_sharp = 0.0
    for p, h, q in zip(cand.tolist(), heights, sharp):      # Python scalars: numpy ones cost ~10x here
        if peaks and p - peaks[-1] < refr:
            if q > last_sharp:
                peaks[-1], hs[-1], last_sharp = p, h, q
            continue
        if peaks and p - peaks[-1] < twave and (h < TWAVE_FRAC * hs[-1] or q < TWAVE_HF_FRAC * last_sharp):
            continue
        peaks.append(p)
        hs.append(h)
        last_sharp = q
    return np.asarray(peaks, np.int64)


def _moving_mean(env: np.ndarray, fd: float) -> np.ndarray:
    """The 1-s moving mean of _pick's threshold (works on (N, T) batches too)."""
    return uniform_filter1d(env, size=max(3, round(1.0 * fd)), mode="nearest", axis=-1)


def _refine(x: np.ndarray, peaks_d: np.ndarray, q: int, fs: float, wide_qs: bool = False) -> np.ndarray:
    """Move each detection to the extremum of x (full rate) of the record's QRS polarity (wide_qs: see below)."""
    if len(peaks_d) == 0:
        return peaks_d
    half = round(0.06 * fs) + q
    centre = peaks_d * q + q // 2
    idx = np.clip(centre[:, None] + np.arange(-half, half + 1), 0, len(x) - 1)
    seg = x[idx]
    seg = seg - fast_median(seg, axis=1)[:, None]
    hi, lo = seg.max(1), -seg.min(1)
    sign = 1.0 if fast_median(hi) >= fast_median(lo) else -1.0
    k = np.argmax(sign * seg, axis=1)
    # wide_qs: an extremum on the window's edge is a slope, not a peak: the window's median sat inside a QRS wider
    # than it (a paced or LBBB QS complex), so its polarity was misjudged. Where most beats' are, take the other
    # polarity if under a quarter of its extrema are on the edge. detect turns it on from PACE_MIN_FS only: at
    # 100 Hz it would also move 5 of PTB-XL's 975 records onto the QRS (all bundle-branch blocks) and 78 of the cpu
    # preset's 3,000 synth records (beats within 50 ms of the true R 85 -> 1,103 of their 1,116), changing the
    # tokens of every committed 100-Hz study; it belongs with their next rerun.
    if wide_qs:
        m = max(1, round(EDGE_S * fs))
        n_edge = lambda j: int(((j < m) | (j > 2 * half - m)).sum())          # extrema on the edge
        if 2 * n_edge(k) > len(k):
            k2 = np.argmax(-sign * seg, axis=1)
            if 4 * n_edge(k2) < len(k):
                k = k2
    return idx[np.arange(len(idx)), k].astype(np.int64)


def detect_batch(x: np.ndarray, fs: float, select: bool = False) -> tuple[list[np.ndarray], list[str], np.ndarray]:
    """Detect R peaks in (N, L, T) signals of one fs.

    Returns (peaks per record as int64 sample indices, flag per record ('' = usable),
    usable-lead mask (N, L)). Flagged records get an empty peak array. `select`: see select.py.
    """
    peaks, flags, usable, _ = detect_clean(x, fs, select)
    return peaks, flags, usable


def detect_clean(x: np.ndarray, fs: float, select: bool = False
                 ) -> tuple[list[np.ndarray], list[str], np.ndarray, np.ndarray]:
    """detect_batch, plus the float32 signals with non-finite samples set to 0 (x itself
    when all are finite), so the windowing need not scan for NaN again.

    Speed: at 500 Hz the full-rate work is two fast reductions (max, min), two comparisons
    for clipping and one block-average; the rest runs at the ~100-Hz detection rate, but for
    a look at the dominant lead around the detections (pace.pacing_suspects) and the
    pacing-spike search in the few records that look sends there.
    """
    fs = check_fs(fs)
    x = np.asarray(x, np.float32)
    if x.ndim != 3:
        raise ValueError(f"signals must be (N, leads, T), got shape {x.shape}")
    n, _n_leads, t = x.shape
    hi, lo = x.max(axis=-1), x.min(axis=-1)           # NaN and inf propagate: also the finite test
    finite = np.isfinite(hi) & np.isfinite(lo)
    xs = x
    if not finite.all():
        xs = np.where(np.isfinite(x), x, np.float32(0.0))
        hi, lo = xs.max(axis=-1), xs.min(axis=-1)
    xd, q, fd = _decimate(xs, fs)
    flat, clipped = flat_clipped(xs, xd.mean(axis=-1), hi, lo, finite)      # mean of block means: T // q * q samples
    usable = finite & ~flat & ~clipped
    env_all = _envelopes(xd, usable, fd)
    none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    peaks_out: list[np.ndarray] = []
    flags: list[str] = []
    picks: list[np.ndarray] = []
    leads = np.zeros(n, np.int64)
    checked = np.zeros(n, bool)                       # passed record_flag: detection ran
    for i in range(n):
        flag = record_flag(finite[i], flat[i], clipped[i], t, fs)
        peaks = pd = np.zeros(0, np.int64)
        if not flag:
            checked[i] = True
            peaks, flag, pd, leads[i] = _record(*(a[i] for a in env_all), usable[i], xs[i], q, fs, select, none)
        peaks_out.append(peaks)
        flags.append(flag)
        picks.append(pd)
    # a rejected record, or one whose beats follow sharp pulses at a fixed delay, is searched for pacing spikes;
    # where it has some, they are blanked and it is detected again (pace.py)
    suspects = pacing_suspects(xs, leads, picks, hi - lo, [bool(f) for f in flags], checked, q, fs)
    if suspects:
        xb, found = reject_pace_pulses(xd, xs, usable, suspects, q, fs)
        paced = [i for i in suspects if len(found[i][0])]
        env_paced = _envelopes(xb[paced], usable[paced], fd) if paced else ()
        for j, i in enumerate(paced):
            peaks_out[i], flags[i], _, _ = _record(*(a[j] for a in env_paced), usable[i], xs[i], q, fs, select,
                                                   found[i])
    peaks_out = [np.zeros(0, np.int64) if f else p for p, f in zip(peaks_out, flags)]
    return peaks_out, flags, usable, xs


def _envelopes(xd: np.ndarray, usable: np.ndarray, fd: float) -> tuple[np.ndarray, ...]:
    """Per record (batched): lead energies, band-passed leads, HF energies, consensus envelope, its 1-s mean."""
    e, bp_all = _energy_bp(xd, fd)                   # one band-pass per lead, kept for beat_flag and pruning
    e_hf = _energy(xd, fd, HF_BAND)
    w = usable.astype(np.float32)[..., None]
    env = (e * w).sum(1) / np.maximum(w.sum(1), 1.0)
    env = uniform_filter1d(env, size=max(1, round(0.08 * fd)), axis=-1)
    return e, bp_all, e_hf, env, _moving_mean(env, fd)


def _record(e: np.ndarray, bp_all: np.ndarray, e_hf: np.ndarray, env: np.ndarray, avg: np.ndarray,
            usable: np.ndarray, xs: np.ndarray, q: int, fs: float, select: bool,
            found: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, str, np.ndarray, int]:
    """(peaks, flag, detection-rate picks, dominant lead) of one record that passed record_flag."""
    fd = fs / q
    n_usable = int(usable.sum())
    hf = uniform_filter1d(e_hf[usable].mean(0), size=max(1, round(0.04 * fd)))
    pd, env_i = _pick(env, fd, avg, hf), env
    if len(pd) and n_usable > 1:                      # second pass: leads weighted by their QRS clarity
        env_w = _weighted_env(e, usable, pd, fd)
        pd_w = _pick(env_w, fd, hf=hf)
        # ... kept unless it lowers the clarity: with frequent PVCs the weights can
        # favour the ectopic morphology and drown the dominant beats
        if len(pd_w) and clarity(env_w, pd_w, fd) >= clarity(env_i, pd, fd):
            pd, env_i = pd_w, env_w
    bp = bp_all[usable]
    lead = int(np.flatnonzero(usable)[0])
    flag = beat_flag(env_i, n_usable, pd, fd, bp)
    peaks = np.zeros(0, np.int64)
    if not flag:
        pd = _search_back(env, pd, fd)
        pd = prune_artefacts(bp, pd, fd)
        lead = _dominant_lead(e, pd, usable)
        peaks = np.unique(_refine(blank_full_rate(xs[lead], found, q), pd, q, fs, wide_qs=fs >= PACE_MIN_FS))
        if select:                                    # opt-in: the trusted train among single-lead ones too
            peaks, _ = select_train(peaks, xs[usable], bp, q, fs)
        flag = rate_flag(peaks, fs)
    return peaks, flag, pd, lead


def _weighted_env(e: np.ndarray, usable: np.ndarray, peaks_d: np.ndarray, fd: float) -> np.ndarray:
    """Consensus envelope with each lead weighted by its QRS-to-background ratio at the
    first-pass beats, so one noisy lead (a loose electrode) cannot add its noise peaks."""
    between = off_beat(e.shape[-1], peaks_d, round(0.15 * fd))
    if not between.any():
        between[:] = True
    score = e[:, peaks_d].mean(1) / (e[:, between].mean(1) + 1e-12)   # means: medians cost 2x here
    w = np.where(usable, score, 0.0) ** 2
    w = np.where(w >= LEAD_WEIGHT_MIN * w.max(), w, 0.0)
    env = (e * w[:, None]).sum(0) / max(w.sum(), 1e-12)
    return uniform_filter1d(env, size=max(1, round(0.08 * fd)))


def _search_back(env: np.ndarray, peaks_d: np.ndarray, fd: float) -> np.ndarray:
    """Pan-Tompkins search-back for beats the lead weighting hid: ectopic (PVC) beats.

    The second pass weights leads by how clearly they show the *dominant* morphology, which
    can drown a PVC (other axis, wide, low slope) whose compensatory pause then leaves an RR
    gap of ~2 median RR. In each gap > SEARCH_GAP x median RR, the highest point of the
    unweighted envelope, past the previous beat's T wave and before the next beat's
    territory, is a beat if it reaches SEARCH_FRAC of the median beat height.
    """
    if len(peaks_d) < 3:
        return peaks_d
    d = np.diff(peaks_d)
    rr = float(fast_median(d))
    gaps = np.flatnonzero(d > SEARCH_GAP * rr)
    if len(gaps) == 0:
        return peaks_d
    height = float(fast_median(env[peaks_d]))
    add = []
    for g in gaps:
        a = peaks_d[g] + int(max(SEARCH_T_S * fd, SEARCH_AFTER * rr))
        b = peaks_d[g + 1] - int(max(REFRACTORY_S * fd, SEARCH_BEFORE * rr))
        if b <= a:
            continue
        k = a + int(np.argmax(env[a:b]))
        if env[k] >= SEARCH_FRAC * height and env[k] >= env[max(k - 1, 0)] and env[k] >= env[min(k + 1, len(env) - 1)]:
            add.append(k)
    return np.sort(np.concatenate([peaks_d, np.asarray(add, np.int64)])) if add else peaks_d


def _dominant_lead(e: np.ndarray, peaks_d: np.ndarray, usable: np.ndarray) -> int:
    """The usable lead with the largest median normalised QRS energy at the detections."""
    score = fast_median(e[:, peaks_d], axis=1)
    score[~usable] = -np.inf
    return int(np.argmax(score))


def detect_r_peaks(signal: np.ndarray, fs: float, return_flag: bool = False, select: bool = False):
    """R-peak sample indices of one record, (12, T) / (L, T) or a single lead (T,).

    Raises ValueError for a bad fs or shape; returns an empty array for a flagged record
    (pass return_flag=True to get the reason too).
    """
    x = np.asarray(signal, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"signal must be (leads, T) or (T,), got shape {np.shape(signal)}")
    peaks, flags, _ = detect_batch(x[None], fs, select)
    return (peaks[0], flags[0]) if return_flag else peaks[0]
