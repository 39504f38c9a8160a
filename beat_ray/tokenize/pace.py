"""Pacemaker pulse rejection: the detector must find the paced QRS, not the pacing spike before it.

Why: a pacing spike (1-3 ms, 2-5 mV at the skin) reaches a 125-360 Hz recording as one or two samples, and after
the block average to the detection rate it is still a one- or two-sample pulse there. Its slope is broadband, so
it carries more 8-20 Hz energy than the wide, smooth paced QRS 20-120 ms after it, and the picker (detect._pick,
which keeps the candidate with more 8-20 Hz energy of two within its refractory period) keeps the spike in some
beats and the QRS in others. On a monitor strip (tests/test_paced_strips.py: PTB-XL 144's paced beat, II + V2,
360 Hz, 110 bpm, 5-mV 3-ms spikes) the spike's envelope was 1.6-1.8 against the QRS's 3.2-3.3 but its 8-20 Hz
energy 3.8-5.6 against 1.5-1.9, so the spike was kept in 9 of 17 beats: RR alternating 650/450 ms, RR variation
0.17 of complexes that correlate 0.92, peak/background 5.0 < 8, and the clean strip was rejected as `no_beats`.
Where such a strip passes, beats sit on the spikes, ~100 ms before the QRS. Bedside monitors blank the pacing
pulse before QRS detection (IEC 60601-2-27 asks their heart-rate meters to reject pacemaker pulses); this module
does that on the signals at the detection rate.

A pulse is a run of one or two samples that stands out from the samples just before and after it by at least
PULSE_RATIO x the slopes around it. At these rates a narrow R wave can be such a pulse too, so a pulse counts as
a pacing spike only (a) when it starts its complex: with the pulses blanked, the mean slope energy over the
PACE_CONTEXT_S after it is at least PACE_CONTEXT x that over the QUIET_S before it (the paced QRS follows the
spike out of a quiet baseline; a narrow R has its Q and S on both sides), and (b) where the full rate has two or
more samples per detection-rate sample, when it is a pulse of at most FULL_W_S at the full rate too (a spike is
one or two samples there, an R wave many). A lead is paced when at least MIN_PULSES of its strong pulses are
spikes, and they are more than SHARE of its strong pulses; with three or more usable leads, at least half of
them must be paced (a pacing artefact reaches every lead at the same instant; a notch in one low-voltage lead
does not). In a paced lead every pulse that starts its complex by BLANK_CONTEXT is a spike (one after a tall T
wave at 110 bpm too); their times are blanked (linear interpolation, one sample of margin either side) in every
usable lead of the record, and, for the final peak position, in the full-rate lead the peaks are refined on.
Measured on PTB-XL's 500-Hz records resampled to 125 Hz, where (b) cannot help: without (a) and the half-of-
the-leads rule 11 of the first 24 records were taken for paced, with them none; of the 5,856 single leads of all
488 records at 125 Hz, 32 get other beats with this change, and against the 12-lead beats at 500 Hz their beat
errors (150 ms) fall from 99 to 14.

Below PACE_MIN_FS a 1-3 ms spike covers a third of a sample or less and an R wave is about as narrow, so records
there (PTB-XL at 100 Hz, synth) are left as they are. The search costs ~0.4 ms a lead, so it does not run on
every record: after its first pass detect asks `pacing_suspects`, a cheap look at the detections, and searches,
and detects again, only the records rejected and those whose detections follow a sharp pulse at a fixed lag
(300 clean synth records at 500 Hz: none; the 488 PTB-XL records at 500 / 360 / 250 / 125 Hz: 1 / 2 / 8 / 51).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

PACE_MIN_FS = 120.0      # Hz: below, a pacing spike and an R wave are both a sample wide
PULSE_RATIO = 2.0        # a pulse's height over the largest slope around it
STRONG = 0.5             # strong pulses: at least this share of the lead's MIN_PULSES-th highest one ...
PULSE_MIN = 0.1          # ... and of the lead's peak-to-peak (the wiggles of a quiet baseline are pulses too)
WEAK = 0.1               # pulses under this share of the MIN_PULSES-th highest are left alone (noise)
PACE_CONTEXT = 10.0      # slope energy after / before a pacing pulse (pulse blanked)
BLANK_CONTEXT = 3.0      # ... of the pulses blanked once the lead is paced
PACE_CONTEXT_S = 0.15    # ... over this long after it (a wide paced QRS lasts 0.12-0.2 s)
QUIET_S = 0.06           # ... and this long before it (at 110 bpm the T wave before ends ~0.1 s before the spike)
MIN_PULSES = 3           # pulses that start their complex, in a paced lead
SHARE = 0.5              # ... and more than this share of the lead's strong pulses
LOOK_BEATS = 8           # pacing_suspects looks at the first this many detections of a record
NOISE_K = 6.0            # pacing_suspects: a spike stands this far above the median slope around it
FULL_W_S = 0.004         # s: the widest a pacing pulse is at the full rate (1-3 ms, widened by the front end)


def pulse_heights(x: np.ndarray, widths: tuple[int, ...] = (1, 2), reach: int = 2
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(height, width) of the highest pulse starting at each sample of x (..., T); height 0 where none.

    Height: how far the pulse's extreme stands beyond the nearer of the samples just before and after it; it
    must exceed PULSE_RATIO x the slopes of the `reach` samples on either side.
    """
    ad = np.abs(np.diff(x, axis=-1))
    n = x.shape[-1]
    best_h, best_w = np.zeros(x.shape, x.dtype), np.zeros(x.shape, np.int64)
    for w in widths:
        a, b = reach + 1, n - w - reach                      # pulse x[i:i + w] between x[i - 1] and x[i + w]
        if b <= a:
            continue
        top, bottom = x[..., a:b], x[..., a:b]
        for k in range(1, w):
            top, bottom = np.maximum(top, x[..., a + k:b + k]), np.minimum(bottom, x[..., a + k:b + k])
        left, right = x[..., a - 1:b - 1], x[..., a + w:b + w]
        h = np.maximum(top - np.maximum(left, right), np.minimum(left, right) - bottom)
        around = ad[..., a - 2:b - 2]                         # ad[j] = |x[j + 1] - x[j]|
        for k in range(2, reach + 1):
            around = np.maximum(around, ad[..., a - 1 - k:b - 1 - k])
        for k in range(reach):
            around = np.maximum(around, ad[..., a + w + k:b + w + k])
        h = np.where(h > PULSE_RATIO * around, h, 0)
        better = h > best_h[..., a:b]
        best_h[..., a:b] = np.where(better, h, best_h[..., a:b])
        best_w[..., a:b] = np.where(better, w, best_w[..., a:b])
    return best_h, best_w


def pulses(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, width, height) of the pulses of one lead of WEAK x the MIN_PULSES-th highest or more, the higher of
    overlapping ones."""
    h, w = pulse_heights(x)
    s = np.flatnonzero(h)
    if len(s) >= MIN_PULSES:
        s = s[h[s] >= WEAK * np.partition(h[s], len(s) - MIN_PULSES)[len(s) - MIN_PULSES]]
    keep: list[int] = []
    for j in s.tolist():                                      # overlapping pulses: the higher one
        if keep and j < keep[-1] + w[keep[-1]]:
            if h[j] > h[keep[-1]]:
                keep[-1] = j
            continue
        keep.append(j)
    k = np.asarray(keep, np.int64)
    return k, w[k], h[k]


def blank(x: np.ndarray, starts: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """x with samples [s - 1, s + w] of each pulse replaced by the line between their neighbours."""
    y = np.array(x, copy=True)
    n = len(y)
    for s, w in zip(starts.tolist(), widths.tolist()):
        a, b = max(s - 2, 0), min(s + w + 1, n - 1)
        y[a:b + 1] = np.linspace(y[a], y[b], b - a + 1)
    return y


def _full_rate_widths(fs: float) -> tuple[int, ...]:
    return tuple(range(1, max(2, round(FULL_W_S * fs)) + 1))


def sharp_at_full_rate(full: np.ndarray, s: int, w: int, h: float, q: int, fs: float) -> bool:
    """Whether the detection-rate pulse (s, w, height h) is a pulse at the full rate too, at least as high. Only
    the slopes next to it count there: the paced QRS can start steeply one sample after the spike."""
    a, b = max(s * q - 4 * q, 0), min((s + w) * q + 4 * q, len(full))
    ph, pw = pulse_heights(full[a:b], _full_rate_widths(fs), reach=1)
    i = np.arange(a, b)
    inside = (i < (s + w + 1) * q) & (i + pw > (s - 1) * q)
    return bool((inside & (ph >= h)).any())


def paced_pulses(x: np.ndarray, full: np.ndarray, q: int, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """(starts, widths) at the detection rate fs / q of the pacing pulses of one lead (x at that rate, full at
    fs); empty if the lead is not paced."""
    none = np.zeros(0, np.int64)
    s, w, h = pulses(x)
    if len(s) < MIN_PULSES:
        return none, none
    top = np.partition(h, len(h) - MIN_PULSES)[len(h) - MIN_PULSES]   # a paced lead's MIN_PULSES-th highest
    fd = fs / q
    # slope energy of the blanked lead, smoothed over ~40 ms so a band-limited spike's ringing does not count
    y = uniform_filter1d(blank(x, s, w), size=max(1, round(0.04 * fd)))
    e = np.concatenate(([0.0], np.cumsum(np.diff(y) ** 2)))   # e[k]: energy of the slopes before sample k
    m, mb, n = round(PACE_CONTEXT_S * fd), round(QUIET_S * fd), len(e) - 1
    before = (e[np.clip(s - 1, 0, n)] - e[np.clip(s - 1 - mb, 0, n)]) / mb     # mean slope energies
    after = (e[np.clip(s + w + 1 + m, 0, n)] - e[np.clip(s + w + 1, 0, n)]) / m
    strong = (h >= STRONG * top) & (h >= PULSE_MIN * np.ptp(x))
    spikes = strong & (after >= PACE_CONTEXT * before)
    if q > 1 and spikes.sum() >= MIN_PULSES:
        for j in np.flatnonzero(spikes).tolist():
            spikes[j] = sharp_at_full_rate(full, int(s[j]), int(w[j]), float(h[j]), q, fs)
    if spikes.sum() < MIN_PULSES or spikes.sum() <= SHARE * strong.sum():
        return none, none
    starts = after >= BLANK_CONTEXT * before                  # in a paced lead: a spike after a tall T wave too
    return s[starts], w[starts]


def pacing_suspects(xs: np.ndarray, leads: np.ndarray, picks: list[np.ndarray], ptp: np.ndarray, flagged: list[bool],
                    checked: np.ndarray, q: int, fs: float) -> list[int]:
    """The records to search for pacing spikes, of those `checked` (detection ran): those rejected (`flagged`), and
    those where, in more than half of their first LOOK_BEATS detections `picks` (detection-rate samples), the
    full-rate lead the peaks were refined on (`leads`; xs (N, L, T), ptp its peak-to-peak (N, L)) has its highest
    pulse, of PULSE_MIN x that lead's peak-to-peak and NOISE_K x the median slope around or more, on the detection
    itself (a spike taken for the beat) or at one lag before it (within a detection-rate sample; up to
    PACE_CONTEXT_S). A pacemaker fires at a fixed delay before the QRS it starts; noise makes pulses at random
    lags. Cheap: one batched look at one lead per record around a few detections."""
    if fs < PACE_MIN_FS:
        return []
    out = [i for i in np.flatnonzero(checked).tolist() if flagged[i]]
    cand = [i for i in np.flatnonzero(checked).tolist() if not flagged[i] and len(picks[i]) >= MIN_PULSES]
    if not cand:
        return out
    picks = [p[:LOOK_BEATS] for p in picks]
    m = round(PACE_CONTEXT_S * fs)
    rec = np.concatenate([np.full(len(picks[i]), i) for i in cand])
    idx = np.clip(np.concatenate([picks[i] for i in cand])[:, None] * q + np.arange(-m, 2 * q + 4), 0, xs.shape[-1] - 1)
    seg = xs[rec[:, None], leads[rec][:, None], idx]
    h, _ = pulse_heights(seg, _full_rate_widths(fs), reach=1)
    top = h.max(1)
    slope = np.abs(np.diff(seg))
    half = slope.shape[1] // 2
    strong = (top >= PULSE_MIN * ptp[rec, leads[rec]]) & (top >= NOISE_K * np.partition(slope, half, axis=1)[:, half])
    lag = np.argmax(h, axis=1) - m
    for i in cand:
        mine = rec == i
        if 2 * int(strong[mine].sum()) <= len(picks[i]):
            continue
        lg = lag[mine & strong]
        on = (lg >= -2 * q - 2) & (lg < 2 * q + 4)                      # the pick is on (the envelope of) a pulse
        before = lg[~on]
        same = int((np.abs(before[:, None] - before[None, :]) <= q).sum(0).max()) if len(before) else 0
        if 2 * (int(on.sum()) + same) > len(picks[i]):
            out.append(i)
    return sorted(out)


def reject_pace_pulses(xd: np.ndarray, xs: np.ndarray, usable: np.ndarray, records: np.ndarray, q: int, fs: float
                       ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """xd (N, L, T at fs / q) with the pacing pulses blanked in the usable leads of the paced ones among
    `records`, and per record the blanked (starts, widths) at the detection rate (empty where none). xs: the
    full-rate signals."""
    empty = np.zeros(0, np.int64)
    found: list[tuple[np.ndarray, np.ndarray]] = [(empty, empty)] * xd.shape[0]
    out = xd
    for i in np.asarray(records).tolist():
        leads = np.flatnonzero(usable[i]).tolist()
        paced = [p for p in (paced_pulses(xd[i, k].astype(np.float64), xs[i, k], q, fs) for k in leads) if len(p[0])]
        if not paced or (len(leads) >= 3 and 2 * len(paced) < len(leads)):
            continue
        s, w = _merge(np.concatenate([p[0] for p in paced]), np.concatenate([p[1] for p in paced]))
        if out is xd:
            out = xd.copy()
        for lead in leads:
            out[i, lead] = blank(xd[i, lead], s, w)
        found[i] = (s, w)
    return out, found


def _merge(starts: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One (start, width) per run of overlapping or adjacent pulses (one spike, seen a sample apart by two leads)."""
    order = np.argsort(starts, kind="stable")
    spans: list[list[int]] = []
    for a, w in zip(starts[order].tolist(), widths[order].tolist()):
        if spans and a <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], a + w)
        else:
            spans.append([a, a + w])
    s = np.asarray([a for a, _ in spans], np.int64)
    return s, np.asarray([b for _, b in spans], np.int64) - s


def blank_full_rate(x: np.ndarray, found: tuple[np.ndarray, np.ndarray], q: int) -> np.ndarray:
    """One full-rate lead with the detection-rate pulses `found` blanked (the q samples of each block, and one
    block of margin either side)."""
    s, w = found
    if len(s) == 0:
        return x
    return blank(x, s * q - q + 1, w * q + 2 * q - 2)
