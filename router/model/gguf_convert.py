"""Bundled GGUF weights as plain safetensors folders, converted once per models cache.

Reading GGUF with transformers de-quantizes every tensor (~30-60 s on a small CPU), so the first
load writes a plain folder under cache_dir() and later loads (the encoder's and serve-local's) read it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from router.errors import CheckpointError
from router.files import atomic_dir
from router.model.encoder import BUNDLED_SOURCES, cache_dir

BUNDLED_MODEL = "SmolLM2-135M-Instruct"


def converted_dir(name: str = BUNDLED_MODEL) -> Path:
    return cache_dir() / "local-models" / name


def ensure_converted(name: str = BUNDLED_MODEL, progress: bool = True) -> Path:
    """The safetensors folder of a bundled GGUF model, converting it on first use."""
    out = converted_dir(name)
    if (out / "model.safetensors").exists() and (out / "config.json").exists():
        return out
    if name not in BUNDLED_SOURCES:
        raise CheckpointError(f"no bundled model {name!r}; bundled: {', '.join(BUNDLED_SOURCES)}")
    src, gguf = BUNDLED_SOURCES[name]()
    import transformers
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not progress:
        transformers.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    t0 = time.perf_counter()
    kwargs = {"gguf_file": gguf} if gguf else {}
    try:
        tok = AutoTokenizer.from_pretrained(src, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(src, **kwargs)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read the bundled model {name!r} from {src}: {exc}") from None
    with atomic_dir(out) as tmp:
        # save_pretrained refuses GGUF-loaded models; the de-quantized tensors are plain float32, so
        # writing them directly (save_model handles the tied embedding) gives an ordinary HF folder.
        save_model(model, str(tmp / "model.safetensors"))
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
        model.generation_config.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "SOURCE.txt").write_text(f"converted from {src}/{gguf} in {time.perf_counter() - t0:.0f} s\n")
    return out
