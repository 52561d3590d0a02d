"""Per-query output length from the training data: a code question and a multiple-choice prompt get
different expected lengths for a slot that owns its labels; a borrowed slot keeps its mean and says so."""

from __future__ import annotations

import json

import numpy as np
import yaml

from router.routing.pool import load_pool
from router.routing.router import PrefillRouter

from .proxy_env import CHECKPOINT

CODE = "Write a python function to {} a list of {} and return the result."
CHOICE = "Question: which {} is {}? A. red B. blue C. green D. none\nAnswer:"
WORDS = ["sort", "reverse", "merge", "split", "count", "filter", "sum", "zip", "rotate", "dedupe"]
THINGS = ["numbers", "strings", "tuples", "words", "dates", "floats"]


def training_data(path):
    """Long-format labels like the bundled data's: code answers long, multiple-choice answers one token."""
    rows = []
    for i, w in enumerate(WORDS):
        for j, t in enumerate(THINGS):
            for model, scale in (("gpt-4-1106-preview", 1.0), ("mistralai/mistral-7b-chat", 0.7)):
                rows.append({"question": CODE.format(w, t), "model": model, "correct": 1, "split": "train",
                             "output_tokens": int(scale * (150 + 5 * i + j))})
                rows.append({"question": CHOICE.format(t, w), "model": model, "correct": 1, "split": "train",
                             "output_tokens": 1})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_predicted_output_length_per_query(tmp_path, default_router, session_cache):
    data = training_data(tmp_path / "labels.jsonl")
    cfg = {"policy": "lengths", "checkpoint": CHECKPOINT, "output_length_data": "labels.jsonl", "models": [
        {"name": "gpt-4-1106-preview", "model": "m1", "cost_per_m_input_tokens": 1, "cost_per_m_output_tokens": 30},
        {"name": "cheap", "model": "m2", "trained_as": "mistralai/mistral-7b-chat", "cost_per_m_input_tokens": 0.1,
         "cost_per_m_output_tokens": 0.2},
        {"name": "mistralai/mistral-7b-chat", "model": "m3", "cost_per_m_input_tokens": 0.1,
         "cost_per_m_output_tokens": 0.2, "reasoning_tokens": 500}]}
    path = tmp_path / "lengths.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    router = PrefillRouter(load_pool(path), encoder=default_router.encoder)
    assert router.pool.output_length_data == str(data)  # resolved next to the YAML
    code_q, choice_q = CODE.format("shuffle", "numbers"), CHOICE.format("strings", "sort")
    code, choice = router.route(code_q), router.route(choice_q)
    c, m = code.score("gpt-4-1106-preview"), choice.score("gpt-4-1106-preview")
    assert c.output_estimate == "predicted for this query (training data)"
    assert c.expected_output_tokens > 3 * m.expected_output_tokens  # code answers are long, A/B/C/D ones short
    assert c.expected_cost_usd > m.expected_cost_usd
    borrowed = code.score("cheap")
    assert "borrowed" in borrowed.output_estimate
    assert borrowed.expected_output_tokens == choice.score("cheap").expected_output_tokens
    own = code.score("mistralai/mistral-7b-chat")  # predicted + the YAML's reasoning tokens
    assert own.output_estimate.endswith("+ reasoning (config)") and own.expected_output_tokens > 500
    assert list((session_cache / "output-length").glob("*.safetensors"))  # the fit is cached, no pickle
    from router.routing import output_length

    output_length._cached.cache_clear()  # the next router reads the fit back from the cache folder
    again = PrefillRouter(load_pool(path), encoder=default_router.encoder).route(code_q)
    assert np.isclose(again.score("gpt-4-1106-preview").expected_output_tokens, c.expected_output_tokens, rtol=1e-4)
