"""Builders for small record trees in the real formats, shared by the reader, prepare and tokenizer tests.

`realdata()` finds ``<repo>/../shared/realdata`` (CI clones the repo beside ``shared/``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import wfdb

from beat_ray.data.errors import RecordError
from beat_ray.data.leads import LEADS

PTBXL_LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def realdata() -> Path:
    """``<repo>/../shared/realdata`` (CI clones the repo beside ``shared/``); skip only if absent."""
    path = REALDATA
    if not path.is_dir():
        pytest.skip(f"real records not found at {path} (expected <repo>/../shared/realdata)")
    return path


def raises_record_error(reason: str, names: str, fn, *args, **kwargs) -> RecordError:
    """Assert fn raises RecordError with this exact reason and a message naming ``names``."""
    with pytest.raises(RecordError) as info:
        fn(*args, **kwargs)
    assert info.value.reason == reason, str(info.value)
    assert names in str(info.value), str(info.value)
    return info.value


def digital(n_leads: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-3000, 3000, size=(n_leads, n)).astype(np.int16)


def write_wfdb(directory: Path, name: str, names: list[str], d: np.ndarray, fs: int,
               units: str = "mV", gain: float = 1000.0) -> Path:
    """A format-16 WFDB record written by wfdb itself; returns the path without extension."""
    directory.mkdir(parents=True, exist_ok=True)
    k = len(names)
    wfdb.wrsamp(name, fs=fs, units=[units] * k, sig_name=names, d_signal=d.T.astype(np.int64),
                fmt=["16"] * k, adc_gain=[gain] * k, baseline=[0] * k, write_dir=str(directory))
    return directory / name


def write_challenge(directory: Path, name: str, dx: str | None, n: int = 1000, fs: int = 500,
                    leads: tuple[str, ...] | list[str] = tuple(LEADS), seed: int = 0, mat_format: str = "4",
                    val: np.ndarray | None = None) -> np.ndarray:
    """A Challenge record: MATLAB ``val`` (int16, 1000/mV) + header with ``# Dx:``; returns ``val``.

    ``val`` (leads, n) int16 gives the samples; by default they are random integers."""
    directory.mkdir(parents=True, exist_ok=True)
    val = digital(len(leads), n, seed) if val is None else np.asarray(val, np.int16)
    n = val.shape[1]
    scipy.io.savemat(directory / f"{name}.mat", {"val": val}, format=mat_format)
    lines = [f"{name} {len(leads)} {fs} {n}"]
    for lead, row in zip(leads, val):
        checksum = (int(row.astype(np.int64).sum()) + 32768) % 65536 - 32768
        lines.append(f"{name}.mat 16x1+24 1000.0(0)/mV 16 0 {row[0]} {checksum} 0 {lead}")
    lines += ["# Age: 53", "# Sex: Male"] + ([f"# Dx: {dx}"] if dx is not None else [])
    lines += ["# Rx: Unknown", "# Hx: Unknown", "# Sx: Unknown"]
    (directory / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return val


def write_nstdb(directory: Path, kind: str, seconds: int = 60, fs: int = 360, seed: int = 0) -> np.ndarray:
    """An NSTDB-format noise record (two 212-format channels at 360 Hz, as the database has them): a random
    walk in mV. Returns the written trace (T, 2)."""
    rng = np.random.default_rng(seed)
    trace = np.cumsum(rng.standard_normal((fs * seconds, 2)), axis=0) * 0.01
    wfdb.wrsamp(kind, fs=fs, units=["mV", "mV"], sig_name=["noise1", "noise2"], p_signal=trace,
                fmt=["212", "212"], write_dir=str(directory))
    return trace
