"""The sweep tab's "Replay an audit log against this pool", through the Gradio API of the real app."""

from __future__ import annotations

import json

import pytest
from gradio_client import Client, handle_file

from .serving import ServerThread

QUESTIONS = ["What is the capital of France?", "Prove that sqrt(2) is irrational.",
             "Write a Python decorator that retries a function three times.", "Translate 'thank you' to German."]


@pytest.fixture(scope="module")
def app_url():
    import app

    with ServerThread(app.create_app()) as server:
        yield server.url


@pytest.fixture(scope="module")
def log(tmp_path_factory, default_router):
    from router.audit.provenance import provenance
    from router.audit.record import DecisionRecord

    path = tmp_path_factory.mktemp("ui-replay") / "audit.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for q in QUESTIONS:
            r = default_router.route(q, tolerance=0.0)
            f.write(json.dumps(DecisionRecord.build(r, api="test", query_text=q, **provenance(default_router)).to_line()) + "\n")
        f.write('{"torn": \n')
    return path


def test_replay_in_the_sweep_tab(app_url, log, default_router):
    c = Client(app_url + "/", verbose=False, download_files=False)
    try:
        html, matrix, diff = c.predict("default", handle_file(str(log)), False, 1.0, api_name="/replay")
        assert "replay-done" in html and "decisions changed: <b>0</b>" in html
        assert f"{len(QUESTIONS)} of {len(QUESTIONS)} lines scored by this checkpoint reproduced" in html
        assert "torn 1" in html
        # At the sidebar's tolerance 1 every decision moves to the cheapest slot.
        html, matrix, diff = c.predict("default", handle_file(str(log)), True, 1.0, api_name="/replay")
        want = sum(default_router.route(q, tolerance=0.0).chosen != default_router.route(q, tolerance=1.0).chosen
                   for q in QUESTIONS)
        assert f"decisions changed: <b>{want}</b>" in html and want > 0
        cells = matrix["data"]
        assert matrix["headers"][0] == "logged \\ replayed"
        assert sum(v for row in cells for v in row[1:]) == len(QUESTIONS)
        assert diff is not None
    finally:
        c.close()
