"""The playground obeys the API's access rules (issue 12, defects 2 and 3): with keys set, Gradio's
API (/gradio_api/*) routes and sends nothing without a login; a public Space does not spend; Send
respects the token cap and is audited; the sweep reads only uploaded files."""

from __future__ import annotations

import json

import httpx
import pytest
from gradio_client import Client

from router.routing.registry import RouterRegistry

from .serving import ServerThread
from .ui_helpers import stub_pool_yaml
from .upstream_stub import UpstreamStub

KEY = "test-key-123"
SLOTS = ["stub-small", "stub-large"]


@pytest.fixture
def ui_stub():
    with UpstreamStub() as s:
        s.behave("stub/small-model", answer="one two three four five six seven eight nine ten")
        s.behave("stub/large-model", answer='{"correct": true, "reason": "fine."}')
        yield s


def _serve(tmp_path, ui_stub):
    import app

    registry = RouterRegistry.from_paths([stub_pool_yaml(tmp_path, ui_stub.base_url)])
    return ServerThread(app.create_app(registry=registry))


def test_gradio_api_without_a_key_is_refused_when_keys_are_set(tmp_path, ui_stub, monkeypatch):
    monkeypatch.setenv("ROUTER_API_KEYS", KEY)
    with _serve(tmp_path, ui_stub) as server:
        for path in ("/gradio_api/info", "/config"):
            assert httpx.get(server.url + path, timeout=30).status_code in (401, 403), path
        r = httpx.post(server.url + "/gradio_api/call/route", json={"data": ["stubpool", "hi", 1.0, SLOTS]}, timeout=30)
        assert r.status_code in (401, 403)
        with pytest.raises(Exception):  # noqa: B017 (gradio_client's refusal has no exception type of its own)
            Client(server.url + "/", verbose=False, download_files=False)
        with pytest.raises(Exception):  # noqa: B017 (gradio_client's refusal has no exception type of its own)
            Client(server.url + "/", auth=("anyone", "wrong-key"), verbose=False, download_files=False)
        # With a key as password the playground works (and the API still takes its bearer key).
        c = Client(server.url + "/", auth=("anyone", KEY), verbose=False, download_files=False)
        try:
            out = c.predict("stubpool", "What is 2 + 2?", 1.0, SLOTS, api_name="/route")
            assert "data-chosen" in out[0]
        finally:
            c.close()
    assert ui_stub.calls() == []  # nothing was sent upstream by routing


def test_ui_auth_pairs_log_in(tmp_path, ui_stub, monkeypatch):
    monkeypatch.setenv("ROUTER_UI_AUTH", "alice:s3cret")
    with _serve(tmp_path, ui_stub) as server:
        with pytest.raises(Exception):  # noqa: B017 (gradio_client's refusal has no exception type of its own)
            Client(server.url + "/", verbose=False, download_files=False)
        c = Client(server.url + "/", auth=("alice", "s3cret"), verbose=False, download_files=False)
        c.close()


def test_send_is_capped_concurrency_limited_and_audited(tmp_path, ui_stub, monkeypatch):
    audit = tmp_path / "audit.jsonl"
    monkeypatch.setenv("ROUTER_AUDIT_LOG", str(audit))
    monkeypatch.setenv("ROUTER_UI_MAX_TOKENS", "3")
    with _serve(tmp_path, ui_stub) as server:
        c = Client(server.url + "/", verbose=False, download_files=False)
        try:
            c.predict("stubpool", "What is 2 + 2?", 1.0, SLOTS, api_name="/route")
            final = c.predict(True, True, api_name="/send")
        finally:
            c.close()
    assert final[1] == "one two three"  # the stub honours max_tokens by words
    calls = ui_stub.calls()
    assert [c["body"]["max_tokens"] for c in calls] == [3, 3]  # the answer, then the review (capped too)
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert [r["api"] for r in lines] == ["playground", "playground"]
    answer, review = lines
    assert answer["selected"] == "stub-small" and answer["usage"]["completion_tokens"] > 0
    assert review["kind"] == "review" and review["review_of"] == answer["request_id"]
    assert review["selected"] == "stub-large" and review["usage"] is not None
    from router.ui.layout import build_ui

    demo = build_ui(RouterRegistry.from_paths([stub_pool_yaml(tmp_path, ui_stub.base_url)]))
    sends = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_send"]
    assert len(sends) >= 3 and {(f.concurrency_limit, f.concurrency_id) for f in sends} == {(4, "send")}


def test_a_public_space_routes_but_never_spends(tmp_path, ui_stub, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/prefill-router")
    with _serve(tmp_path, ui_stub) as server:
        c = Client(server.url + "/", verbose=False, download_files=False)
        try:
            out = c.predict("stubpool", "What is 2 + 2?", 1.0, SLOTS, api_name="/route")
            assert "data-chosen" in out[0]
            with pytest.raises(Exception, match="public Space"):
                c.predict(True, True, api_name="/send")
        finally:
            c.close()
    assert ui_stub.calls() == []


def _call_api(url: str, name: str, data: list) -> tuple[str, str]:
    """One raw /gradio_api/call/<name> request (gradio_client would upload a local FileData path
    itself); returns the final event's name and data."""
    r = httpx.post(f"{url}/gradio_api/call/{name}", json={"data": data}, timeout=60)
    r.raise_for_status()
    event_id = r.json()["event_id"]
    event, payload = "", ""
    with httpx.stream("GET", f"{url}/gradio_api/call/{name}/{event_id}", timeout=120) as s:
        for line in s.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                payload = line[5:].strip()
    return event, payload


def test_the_sweep_refuses_a_raw_server_path_without_saying_if_it_exists(tmp_path, ui_stub):
    secret = tmp_path / "secret.txt"
    secret.write_text("What is the root password?\nAnd the other one?\n", encoding="utf-8")
    results = []
    with _serve(tmp_path, ui_stub) as server:
        for path in (secret, tmp_path / "missing.txt"):
            fd = {"path": str(path), "meta": {"_type": "gradio.FileData"}, "orig_name": path.name}
            results.append(_call_api(server.url, "sweep", ["stubpool", SLOTS, fd, 0.0, 0.5, 0.25]))
    assert [e for e, _ in results] == ["error", "error"], results
    assert "2 questions" not in results[0][1]
    # Refused alike: the answer does not tell an existing file from a missing one.
    assert results[0][1].replace("secret", "X") == results[1][1].replace("missing", "X")
