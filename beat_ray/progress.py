"""Progress bars that stay readable where no one watches them.

On a terminal a tqdm bar redraws ten times a second; written into a log (a Ray job's, CI's, `make
demo > log`), each redraw is another `\\r` line, hundreds per bar. So when the bar's stream is not
a TTY it redraws at most every `LOG_INTERVAL_S` seconds (plus the first and the final line).
"""
from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO

from tqdm.auto import tqdm

LOG_INTERVAL_S = 30.0


def is_tty(stream: IO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):      # closed or foreign streams
        return False


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             disable: bool = False, file: IO | None = None) -> tqdm:
    """A tqdm bar on `file` (default stderr): live on a terminal, sparse in a log."""
    stream = file if file is not None else sys.stderr
    sparse = {} if is_tty(stream) else {"mininterval": LOG_INTERVAL_S, "maxinterval": LOG_INTERVAL_S,
                                        "ascii": True, "ncols": 100}
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=stream, **sparse)
