"""Read one WFDB or PhysioNet/CinC Challenge record into the suite's (12, T) mV layout.

Why a wrapper around `wfdb.rdrecord`: real trees contain truncated files, headers whose
sample count disagrees with the data, odd unit spellings (``mv``, ``uV``) and lead names that
need mapping. wfdb either raises bare tracebacks for these or, worse, silently reads a
prefix. Every problem here becomes a `RecordError` that names the file and carries a short
``reason`` key, so `prepare` can skip the record and count why in its data report.

Signals are returned at their native sampling rate; resampling is `prepare`'s job.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import scipy.io
import wfdb

from beat_ray.data.errors import RecordError
from beat_ray.data.leads import to_standard_order

# Physical unit -> factor to mV. WFDB's default unit (none written in the header) is mV.
_UNIT_TO_MV: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}

# Bytes per sample of the fixed-width WFDB formats, for the file-size check (wfdb itself reads a
# prefix without complaint when the header claims fewer samples than the file holds).
_BYTES_PER_SAMPLE: dict[str, float] = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1,
                                       "160": 2, "212": 1.5, "310": 4 / 3, "311": 4 / 3}

_DX_LINE = re.compile(r"^\s*#?\s*dx\s*:(.*)$", re.IGNORECASE)


def strip_ext(path: str | Path) -> str:
    """Record path without a ``.hea``/``.dat``/``.mat`` extension (wfdb wants the bare name)."""
    p = str(path)
    for ext in (".hea", ".dat", ".mat"):
        if p.endswith(ext):
            return p[: -len(ext)]
    return p


def read_header(path: str | Path) -> wfdb.Record:
    """`wfdb.rdheader` with every failure turned into a `RecordError` naming the header."""
    rec = strip_ext(path)
    hea = Path(rec + ".hea")
    if not hea.is_file():
        raise RecordError(hea, "header file not found", reason="missing_file")
    try:
        header = wfdb.rdheader(rec)
    except Exception as exc:  # wfdb raises HeaderSyntaxError, ValueError, IndexError, ...
        raise RecordError(hea, f"unreadable header: {type(exc).__name__}: {exc}", reason="bad_header") from exc
    if isinstance(header, wfdb.MultiRecord):
        raise RecordError(hea, "multi-segment records are not supported", reason="multi_segment")
    if not header.n_sig or not header.sig_name:
        raise RecordError(hea, "header lists no signals", reason="bad_header")
    if not header.fs or header.fs <= 0:
        raise RecordError(hea, f"invalid sampling frequency {header.fs!r}", reason="bad_fs")
    if header.sig_len == 0:
        raise RecordError(hea, "header says the record has 0 samples", reason="empty_record")
    return header


def parse_dx(header_lines: list[str], path: str | Path = "<header>") -> list[str]:
    """SNOMED/diagnosis codes from ``# Dx:`` lines, tolerant of spaces and empty items.

    Accepts raw header lines (``"# Dx: 1,2"``) or wfdb comments (``"Dx: 1,2"``). Several Dx
    lines are merged; duplicates are removed keeping first order. A header with no Dx line
    raises ``missing_dx``; an empty Dx line gives ``[]``.
    """
    codes: list[str] = []
    found = False
    for line in header_lines:
        m = _DX_LINE.match(line)
        if not m:
            continue
        found = True
        for tok in re.split(r"[,;]", m.group(1)):
            tok = tok.strip()
            if tok and tok not in codes:
                codes.append(tok)
    if not found:
        raise RecordError(path, "no '# Dx:' line in header", reason="missing_dx")
    return codes


def read_dx(path: str | Path) -> list[str]:
    """Dx codes of a Challenge-format record, from the comment lines of its header only.

    Only ``#`` lines are looked at (the signal lines are validated by `read_header` when the
    record is read); this keeps indexing 45k Chapman headers at ~0.1 ms each instead of the
    ~4 ms a full `wfdb.rdheader` parse costs.
    """
    hea = Path(strip_ext(path) + ".hea")
    try:
        text = hea.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError as exc:
        raise RecordError(hea, "header file not found", reason="missing_file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(hea, f"unreadable header: {type(exc).__name__}: {exc}", reason="bad_header") from exc
    return parse_dx([ln for ln in text.splitlines() if ln.lstrip().startswith("#")], hea)


def _check_sizes(header: wfdb.Record, rec: str) -> None:
    """Each signal file exists and its size matches the header's sample count."""
    directory = Path(rec).parent
    files: dict[str, list[int]] = {}
    for i, name in enumerate(header.file_name):
        files.setdefault(name, []).append(i)
    for name, chans in files.items():
        fpath = directory / name
        if not fpath.is_file():
            raise RecordError(fpath, "signal file named in the header not found", reason="missing_file")
        fmts = {header.fmt[i] for i in chans}
        fmt = fmts.pop() if len(fmts) == 1 else None
        if fmt not in _BYTES_PER_SAMPLE or header.sig_len is None:
            continue          # compressed/mixed formats, or length implied by the file: let wfdb judge
        spf = header.samps_per_frame or [1] * header.n_sig
        per_frame = sum((spf[i] or 1) for i in chans)
        offset = (header.byte_offset[chans[0]] if header.byte_offset else None) or 0
        bps = _BYTES_PER_SAMPLE[fmt]
        expected = offset + math.ceil(header.sig_len * per_frame * bps)
        actual = fpath.stat().st_size
        frame_bytes = math.ceil(per_frame * bps)
        if actual < expected or actual - expected >= max(frame_bytes, 4):
            held = int((actual - offset) / (per_frame * bps)) if actual > offset else 0
            raise RecordError(fpath, f"header says {header.sig_len} samples x {per_frame} channels "
                                     f"(format {fmt}, {expected} bytes) but the file has {actual} bytes "
                                     f"(~{held} samples)", reason="header_data_mismatch")


def _unit_factors(units: list[str | None] | None, n: int, path: str) -> np.ndarray:
    out = np.ones(n, dtype=np.float64)
    for i, u in enumerate(units or [None] * n):
        key = (u or "mV").strip().lower()
        if key not in _UNIT_TO_MV:
            raise RecordError(path, f"signal {i} has unit {u!r}; expected mV, uV or V", reason="bad_units")
        out[i] = _UNIT_TO_MV[key]
    return out


def _finish(p_signal: np.ndarray, header: wfdb.Record, path: str, require_all: bool) -> tuple[np.ndarray, float]:
    """(T, n) physical samples -> (12, T) float32 mV in standard order."""
    hea = path + ".hea"                  # units and lead names are the header's problem
    factors = _unit_factors(header.units, header.n_sig, hea)
    sig = (np.asarray(p_signal, dtype=np.float64) * factors[None, :]).T
    return to_standard_order(sig.astype(np.float32), list(header.sig_name), hea, require_all=require_all), \
        float(header.fs)


def read_wfdb(path: str | Path, require_all: bool = True) -> tuple[np.ndarray, float]:
    """Read a WFDB record (``path`` without extension) as (12, T) float32 mV and its fs.

    Leads are mapped to the standard order; with ``require_all=False`` absent leads are NaN
    rows. Samples wfdb marks invalid are NaN too. Raises `RecordError` for every failure.
    """
    rec = strip_ext(path)
    return _read_samples(read_header(rec), rec, require_all)


def _read_samples(header: wfdb.Record, rec: str, require_all: bool) -> tuple[np.ndarray, float]:
    _check_sizes(header, rec)
    try:
        record = wfdb.rdrecord(rec, physical=True)
    except FileNotFoundError as exc:
        raise RecordError(exc.filename or rec, "file not found", reason="missing_file") from exc
    except Exception as exc:
        raise RecordError(rec, f"wfdb could not read the samples: {type(exc).__name__}: {exc}",
                          reason="header_data_mismatch") from exc
    want = (header.sig_len if header.sig_len is not None else record.sig_len, header.n_sig)
    if record.p_signal is None or record.p_signal.shape != want or want[0] == 0:
        shape = None if record.p_signal is None else record.p_signal.shape
        raise RecordError(rec, f"read samples of shape {shape}, header says {want}", reason="header_data_mismatch")
    return _finish(record.p_signal, header, rec, require_all)


def _is_mat_v5(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(6) == b"MATLAB"


def _read_mat_v5(header: wfdb.Record, mat: Path, rec: str, require_all: bool) -> tuple[np.ndarray, float]:
    """Fallback for Challenge records saved as MATLAB v5 (wfdb reads only the v4 layout)."""
    try:
        content = scipy.io.loadmat(mat)
    except Exception as exc:
        raise RecordError(mat, f"unreadable .mat: {type(exc).__name__}: {exc}", reason="bad_mat") from exc
    if "val" not in content:
        raise RecordError(mat, f"no 'val' variable (has {sorted(k for k in content if not k.startswith('__'))})",
                          reason="bad_mat")
    val = np.asarray(content["val"], dtype=np.float64)
    val[val == -32768] = np.nan                                  # format-16 "invalid sample", as wfdb does
    if val.shape != (header.n_sig, header.sig_len):
        raise RecordError(mat, f"'val' has shape {val.shape}, header says ({header.n_sig}, {header.sig_len})",
                          reason="header_data_mismatch")
    gain = np.asarray([g if g else 200.0 for g in header.adc_gain], dtype=np.float64)   # WFDB default gain
    base = np.asarray(header.baseline or [0] * header.n_sig, dtype=np.float64)
    return _finish(((val - base[:, None]) / gain[:, None]).T, header, rec, require_all)


def read_challenge(path: str | Path, require_all: bool = True) -> tuple[np.ndarray, float]:
    """Read a PhysioNet/CinC Challenge record (``.hea`` + ``.mat`` with ``val``) as (12, T) mV, fs.

    The Challenge ``.mat`` files are MATLAB v4 with a 24-byte preamble that the header
    declares (``16x1+24``), so `wfdb.rdrecord` reads them directly with the header's gain
    (e.g. 1000/mV). A MATLAB v5 file is read with scipy instead, using the same header gains.
    """
    rec = strip_ext(path)
    header = read_header(rec)
    mats = {n for n in header.file_name if n.lower().endswith(".mat")}
    if len(mats) == 1:
        mat = Path(rec).parent / mats.pop()
        if not mat.is_file():
            raise RecordError(mat, "signal file named in the header not found", reason="missing_file")
        if _is_mat_v5(mat):
            return _read_mat_v5(header, mat, rec, require_all)
    return _read_samples(header, rec, require_all)
