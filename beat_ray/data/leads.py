"""The standard 12-lead order and the mapping from the many spellings found in real headers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from beat_ray.data.errors import RecordError

LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF",
                          "V1", "V2", "V3", "V4", "V5", "V6")
LEAD_INDEX: dict[str, int] = {name: i for i, name in enumerate(LEADS)}

# Keys are lower-cased, stripped header names; PTB uses i/ii/avr/v1, CinC uses I/II/aVR/V1,
# MIT-BIH uses MLII/MLIII/V1..V6 (modified limb leads are the same projections).
_ALIASES: dict[str, str] = {
    "i": "I", "ii": "II", "iii": "III", "avr": "aVR", "avl": "aVL", "avf": "aVF",
    "mli": "I", "mlii": "II", "mliii": "III", "d1": "I", "d2": "II", "d3": "III",
    **{f"v{k}": f"V{k}" for k in range(1, 7)},
}


def canonical_lead(name: str, path: str | Path = "<header>") -> str:
    """Map a header lead name to its standard name; unknown names are an error, not a guess."""
    key = name.strip().lower().replace("-", "").replace(" ", "")
    if key not in _ALIASES:
        raise RecordError(path, f"unknown lead name {name!r}", reason="unknown_lead")
    return _ALIASES[key]


def to_standard_order(signal: np.ndarray, names: list[str], path: str | Path = "<record>",
                      require_all: bool = True) -> np.ndarray:
    """Reorder a (n_leads, T) array into the 12 standard leads.

    Missing leads raise (``require_all``) or are filled with NaN so the caller can mask them.
    """
    if signal.ndim != 2 or signal.shape[0] != len(names):
        raise RecordError(path, f"signal shape {signal.shape} does not match {len(names)} lead names",
                          reason="shape_mismatch")
    canon = [canonical_lead(n, path) for n in names]
    dup = {c for c in canon if canon.count(c) > 1}
    if dup:
        raise RecordError(path, f"duplicate leads {sorted(dup)}", reason="duplicate_lead")
    missing = [lead for lead in LEADS if lead not in canon]
    if missing and require_all:
        raise RecordError(path, f"missing leads {missing}", reason="missing_leads")
    out = np.full((len(LEADS), signal.shape[1]), np.nan, dtype=np.float32)
    for row, c in zip(signal, canon):
        out[LEAD_INDEX[c]] = row
    return out
