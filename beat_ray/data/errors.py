"""One error type for bad input, so every failure names its file and its problem."""
from __future__ import annotations

from pathlib import Path


class RecordError(ValueError):
    """A record or metadata file that cannot be used.

    `reason` is a short machine-readable key (e.g. ``"nan_samples"``) used to count
    skips in the data report; the message always names the file.
    """

    def __init__(self, path: str | Path, problem: str, reason: str = "unreadable") -> None:
        self.path = str(path)
        self.problem = problem
        self.reason = reason
        super().__init__(f"{self.path}: {problem}")
