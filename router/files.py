"""Files written whole or not at all: a reader never sees half a checkpoint, label file or report.

Everything goes to a temporary name beside the target and is renamed over it once complete (an
atomic step on POSIX), so a crash or Ctrl-C leaves the previous file, never a torn one.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _temp_beside(path: Path) -> Path:
    return path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}-{path.name}")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temp file beside `path` ('w' text, 'wb' bytes; '.gz' names are gzip-compressed);
    it replaces `path` when the block ends without an error, and is removed otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    binary = "b" in mode
    try:
        if path.name.endswith(".gz"):
            fh = gzip.open(tmp, "wb" if binary else "wt", **({} if binary else {"encoding": "utf-8", "newline": ""}))
        else:
            fh = open(tmp, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""}))
        with fh:
            yield fh
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_tensors(tensors: dict, path: str | Path) -> str:
    """A safetensors file written through atomic_write: whole or not at all, and with the umask's
    permissions. safetensors' own save_file creates files 0600 whatever the umask, so a checkpoint
    trained by one user could not be read by the container user that serves it. Returns the file's
    sha256 (hex), for a sibling file that must be read together with it."""
    import hashlib

    from safetensors.numpy import save

    data = save(tensors)
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_write(path) as fh:
        fh.write(text)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a folder under a temp name; it becomes `path` if the block succeeds and no other
    process finished the same folder first (then the copy is dropped: both are equal)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.replace(path)


def check_output_file(path: str | Path, flag: str = "--out", inputs: dict[str, str | Path] | None = None) -> Path:
    """Refuse, before any work is done, an output file path that cannot be written: a folder, one
    under a parent that is a file (long jobs used to fail at the very end, on the rename), or one of
    the command's `inputs` ({flag: path}), which the output would overwrite."""
    from router.errors import InputError

    p = Path(path)
    if p.is_dir():
        raise InputError(f"{flag} {p}: is a folder; give a file name")
    for in_flag, q in (inputs or {}).items():
        if q is None:
            continue
        q = Path(q).resolve()
        if q == p.resolve():
            raise InputError(f"{flag} {p}: is the {in_flag} file; writing there would replace the input, "
                             "so give another file name")
        if q.is_dir() and q in p.resolve().parents:  # a checkpoint's router.json, a file of a data folder
            raise InputError(f"{flag} {p}: is inside the {in_flag} folder {q}; writing there would replace "
                             "or add to the input, so write somewhere else")
    _check_parents(p, flag)
    return p


def check_output_dir(path: str | Path, flag: str = "--out") -> Path:
    """Refuse an output folder path that is an existing file (or lies under one)."""
    from router.errors import InputError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{flag} {p}: is an existing file; give a folder name")
    _check_parents(p, flag)
    return p


def _check_parents(p: Path, flag: str) -> None:
    from router.errors import InputError

    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{flag} {p}: {parent} is a file, not a folder")
            return
