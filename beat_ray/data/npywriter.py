"""Write an (N, ...) .npy file row by row, so preparing a dataset never holds it in RAM.

Why: preparation used to collect every record in a list and `np.stack` them, about twice the
signals in RAM (about 10 GB for PTB-XL at 500 Hz). Rows go straight to the file instead, and
the header, written for the most rows there can be, is rewritten for the rows kept. The header
is the .npy format version 1.0 (numpy's NEP 1: magic, version, little-endian uint16 header
length, a Python dict literal padded with spaces to a 64-byte boundary), padded to a fixed
length so that rewriting it never moves the data.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

MAGIC = b"\x93NUMPY\x01\x00"
HEADER_BYTES = 192            # magic + length + dict; a multiple of 64, room for any 3-D shape


def _header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    text = f"{{'descr': {np.lib.format.dtype_to_descr(dtype)!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    room = HEADER_BYTES - len(MAGIC) - 2
    if len(text) + 1 > room:
        raise ValueError(f"npy header for shape {shape} does not fit in {HEADER_BYTES} bytes")
    return MAGIC + struct.pack("<H", room) + (text.ljust(room - 1) + "\n").encode("latin1")


class NpyRowWriter:
    """`append(row)` up to `max_rows` rows of `row_shape`; `close()` fixes the header to the rows written."""

    def __init__(self, path: str | Path, max_rows: int, row_shape: tuple[int, ...], dtype=np.float32):
        self.path, self.row_shape, self.dtype = Path(path), tuple(row_shape), np.dtype(dtype)
        self.max_rows, self.n = int(max_rows), 0
        self._f = open(self.path, "wb")
        self._f.write(_header(self.dtype, (self.max_rows, *self.row_shape)))

    def append(self, row: np.ndarray) -> None:
        if self.n >= self.max_rows:
            raise ValueError(f"{self.path}: more than {self.max_rows} rows")
        row = np.ascontiguousarray(row, dtype=self.dtype)
        if row.shape != self.row_shape:
            raise ValueError(f"{self.path}: row {self.n} has shape {row.shape}, expected {self.row_shape}")
        self._f.write(row.tobytes())
        self.n += 1

    def close(self) -> Path:
        self._f.seek(0)
        self._f.write(_header(self.dtype, (self.n, *self.row_shape)))
        self._f.truncate(HEADER_BYTES + self.n * int(np.prod(self.row_shape)) * self.dtype.itemsize)
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        return self.path

    def abort(self) -> None:
        self._f.close()
        self.path.unlink(missing_ok=True)
