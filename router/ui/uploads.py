"""Uploaded files are read only from Gradio's upload folder.

A Gradio API caller can post any `path` in a FileData; the sweep must not read a server file
because someone named it. Anything outside the upload folder is refused with one message whether
or not it exists (the refusal must not tell a prober which paths are there).
"""

from __future__ import annotations

import os
from pathlib import Path

from router.errors import InputError

REFUSED = "the sweep reads only files uploaded through the page: upload the question file again"


def upload_root() -> Path:
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


def checked_upload(path: str | os.PathLike, root: Path | None = None) -> Path:
    """The upload's real path when it lies inside the upload folder, else InputError (same text either way)."""
    root = Path(os.path.realpath(root or upload_root()))
    try:
        real = Path(os.path.realpath(path))
    except (OSError, ValueError, TypeError):
        raise InputError(REFUSED) from None
    if root != real and root not in real.parents:
        raise InputError(REFUSED)
    if not real.is_file():
        raise InputError(REFUSED)
    return real


def read_upload(fn, path: str | os.PathLike, *args, root: Path | None = None):
    """`fn(real_path, *args)` on a checked upload; an error names the file as the user uploaded it,
    never the server's upload folder (which is none of the visitor's business)."""
    real = checked_upload(path, root)
    try:
        return fn(real, *args)
    except InputError as exc:
        text = str(exc)
        for shown in {str(real), str(path), os.path.realpath(path)}:
            text = text.replace(shown, real.name)
        raise InputError(text) from None
