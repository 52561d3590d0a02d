"""Appending to a JSONL file whose last line may be torn (a process killed mid-write).

Appending straight after a torn line glues the next record onto it, and a reader then loses both:
so every appender repairs the tail first. Two repairs, one helper: `keep=True` (the audit log)
ends the fragment with a newline, so it stays in the file as one bad line that readers report
and skip; `keep=False` (collect's label file, whose reader is strict) cuts the fragment off.
"""

from __future__ import annotations

import os
from pathlib import Path


def repair_fd(fd: int, keep: bool = True) -> int:
    """Repair the tail of the open file `fd` (opened read-write); returns the bytes added (+) or cut (-)."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    if keep:
        os.write(fd, b"\n")  # fd is O_APPEND for appenders: lands at the end
        return 1
    # Find the last newline, reading backwards in blocks (the file may be large).
    pos, block = size, 65536
    while pos > 0:
        start = max(0, pos - block)
        chunk = os.pread(fd, pos - start, start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            os.ftruncate(fd, start + i + 1)
            return -(size - (start + i + 1))
        pos = start
    os.ftruncate(fd, 0)
    return -size


def repair_torn_tail(path: str | Path, keep: bool = True) -> int:
    path = Path(path)
    if not path.exists():
        return 0
    fd = os.open(path, os.O_RDWR | os.O_APPEND)
    try:
        return repair_fd(fd, keep)
    finally:
        os.close(fd)
