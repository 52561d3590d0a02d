"""The real bundled encoders: truncation keeps the end, messages, batching, the decoder path."""

from __future__ import annotations

import numpy as np
import pytest

from router.errors import CheckpointError, InputError
from router.model.encoder import EncoderSpec, get_encoder, messages_to_text


@pytest.fixture(scope="module")
def minilm():
    return get_encoder(EncoderSpec(max_tokens=32))


def test_left_truncation_keeps_the_end(minilm):
    tail = ("Here is the real question after many examples: which planet in the solar system is the "
            "largest, and roughly how many Earths would fit inside it by volume? Answer:")
    a = minilm.features(["The weather report mentions clouds and light wind. " * 20 + tail])[0]
    b = minilm.features(["Completely different preamble about gardening tools. " * 20 + tail])[0]
    c = minilm.features(["The weather report mentions clouds and light wind. " * 20 + "Sort a list in Python."])[0]
    # The encoder sees only the last 32 tokens: same ending -> same features, whatever came before.
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert not np.allclose(a, c, atol=1e-3)
    ids, counts = minilm.tokenize(["filler words " * 100 + "capital of France?"])
    assert len(ids[0]) == 32 and counts[0] > 200
    assert minilm.tokenizer.decode(ids[0][1:-1]).endswith("capital of france?")


def test_right_truncation_keeps_the_start():
    enc = get_encoder(EncoderSpec(max_tokens=16, truncation_side="right"))
    ids, _ = enc.tokenize(["alpha beta gamma " * 30 + "omega"])
    assert "omega" not in enc.tokenizer.decode(ids[0]) and len(ids[0]) == 16


def test_batching_matches_single(minilm):
    texts = ["short", "a somewhat longer question about databases and indexes", "What is 2 + 2?"]
    batch = minilm.features(texts, batch_size=2)
    single = np.stack([minilm.features([t])[0] for t in texts])
    np.testing.assert_allclose(batch, single, atol=1e-4)


def test_encoder_loads_once(minilm):
    assert get_encoder(EncoderSpec(max_tokens=32)) is minilm


def test_empty_query_is_refused(minilm):
    with pytest.raises(InputError, match="empty"):
        minilm.features(["   "])


def test_messages_to_text_keeps_last_user_turn_last():
    msgs = [{"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi, how can I help?"},
            {"role": "user", "content": [{"type": "text", "text": "Sort a list"}, {"type": "image_url"}]}]
    text = messages_to_text(msgs)
    assert text.endswith("user: Sort a list") and "coding agent" not in text
    assert messages_to_text([{"role": "user", "content": "just this"}]) == "just this"


@pytest.mark.parametrize("msgs,match", [
    ([], "empty"), ([{"role": "assistant", "content": "x"}], "no user turn"),
    ([{"role": "user", "content": ""}], "empty"), ([{"role": "user", "content": 5}], "string or an array"),
])
def test_bad_messages(msgs, match):
    with pytest.raises(InputError, match=match):
        messages_to_text(msgs)


def test_bad_spec_and_unknown_source():
    with pytest.raises(CheckpointError, match="pooling"):
        EncoderSpec(pooling="max")
    with pytest.raises(CheckpointError, match="cannot load encoder"):
        get_encoder(EncoderSpec(source="/nonexistent/model-folder"))


@pytest.mark.slow
def test_decoder_prefill_path_on_smollm2():
    spec = EncoderSpec(source="SmolLM2-135M-Instruct", kind="decoder", layers=(8, -1), pooling="last", max_tokens=64)
    enc = get_encoder(spec)
    X = enc.features(["What is 2 + 2?", "Prove that there are infinitely many primes."])
    assert X.shape == (2, 2 * enc.model.config.hidden_size) and np.isfinite(X).all()
    assert not np.allclose(X[0], X[1])
    ids, _ = enc.tokenize(["word " * 500 + "final question?"])
    assert len(ids[0]) == 64
    # the chat template's assistant header is the last thing the decoder reads
    assert enc.tokenizer.decode(ids[0]).rstrip().endswith("assistant")


@pytest.mark.gpu
def test_encoder_runs_on_cuda_when_present():
    enc = get_encoder(EncoderSpec(max_tokens=64))
    assert enc.device == "cuda" and next(enc.model.parameters()).is_cuda
    X = enc.features(["What is 2 + 2?"])
    assert X.dtype == np.float32 and np.isfinite(X).all()


def test_int8_encoder_gives_a_query_the_same_features_alone_and_in_any_batch():
    from router.model import torch_thread

    enc = get_encoder(EncoderSpec(max_tokens=64, quantize="int8"))
    texts = ["What is 2 + 2?", "Prove that the square root of two is irrational, step by step, and say where "
             "the proof uses that every integer factors into primes in exactly one way.", "Hi"]
    alone = np.concatenate([enc.features([t]) for t in texts])
    assert np.array_equal(enc.features(texts), alone)
    assert np.array_equal(enc.features(texts[::-1])[::-1], alone)
    # what it guards against: one padded int8 batch shares one activation scale across its rows
    ids, _ = enc.tokenize(texts)
    assert not np.allclose(torch_thread.call(enc._forward, ids), alone, atol=1e-5)


def test_int8_quantized_encoder_stays_close_to_fp32():
    texts = ["What is the capital of France?", "Prove that the square root of two is irrational."]
    fp32 = get_encoder(EncoderSpec(max_tokens=64)).features(texts)
    int8 = get_encoder(EncoderSpec(max_tokens=64, quantize="int8")).features(texts)
    cos = (fp32 * int8).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(int8, axis=1)
    assert (cos > 0.95).all() and not np.array_equal(fp32, int8)
    assert "quantize" not in EncoderSpec().to_json()  # old specs and cache keys unchanged
    with pytest.raises(CheckpointError, match="quantize"):
        EncoderSpec(quantize="int4")
