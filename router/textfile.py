"""Reading the text files users hand us (labels, questions, RouterBench CSVs): UTF-8 with or without
a byte-order mark, optionally gzip-compressed, and read errors that name the file and the line.

Excel's "CSV UTF-8" starts files with a BOM; read as plain UTF-8 it becomes part of the first column's
name, so a `split` or `id` column silently vanished. Undecodable bytes and a `.gz` name on a file that
is not gzip used to surface as tracebacks from deep inside the csv module.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from router.errors import InputError

_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def _raw_lines(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def first_bad_line(path: Path) -> int | None:
    """The 1-based line holding the first byte sequence that is not UTF-8 (None if none is found)."""
    try:
        with _raw_lines(path) as fh:
            for n, raw in enumerate(fh, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    return n
    except (*_GZIP_ERRORS, OSError):
        return None
    return None


class TextFile:
    """Iterate lines (newlines kept, as csv wants) of a UTF-8 file; a read error becomes an InputError."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a folder, expected a file")
        try:
            if self.path.name.endswith(".gz"):
                self._fh = gzip.open(self.path, "rt", encoding="utf-8-sig", newline="")
            else:
                self._fh = open(self.path, encoding="utf-8-sig", newline="")
        except FileNotFoundError:
            raise InputError(f"{self.path}: file not found") from None
        except PermissionError:
            raise InputError(f"{self.path}: not readable (permission denied)") from None

    def __enter__(self) -> TextFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._fh.close()

    def __iter__(self) -> TextFile:
        return self

    def __next__(self) -> str:
        try:
            return next(self._fh)
        except UnicodeDecodeError:
            n = first_bad_line(self.path)
            at = f"line {n}: " if n else ""
            raise InputError(f"{self.path}: {at}not UTF-8 text; save the file as UTF-8") from None
        except _GZIP_ERRORS as exc:
            raise InputError(f"{self.path}: not a readable gzip file ({exc}); a name ending in .gz must be "
                             "gzip-compressed") from None


def open_text(path: str | Path) -> TextFile:
    return TextFile(path)
