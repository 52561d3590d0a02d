"""/v1/responses has every failure path of the chat endpoint (issue 12): a client that hangs up cancels
the upstream call and is audited `client_closed`; a stream that breaks or cannot be translated midway
ends with the API's error event and exactly one final audit line with the usage so far; a plain
answer that cannot be translated is a 502 audited with its usage. All against real servers on
127.0.0.1: the loopback stub, and RawUpstream where a server must hang or go silent.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
import yaml

from .proxy_env import POLICY, audit_lines, dest, make_registry, serve_api, wait_audit_lines, write_pool
from .raw_upstream import RawUpstream

Q = "What is the capital of France?"
BODIES = {"/v1/responses": {"model": POLICY, "input": Q},
          "/v1/chat/completions": {"model": POLICY, "messages": [{"role": "user", "content": Q}]},
          "/v1/messages": {"model": POLICY, "max_tokens": 50, "messages": [{"role": "user", "content": Q}]}}
# A chunk the translators cannot read: its delta is a string, not an object.
BAD_CHUNK = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": "not an object", "finish_reason": None}]}


def _proxy(tmp_path, base_url, **kw):
    registry = make_registry(write_pool(tmp_path, base_url))
    return serve_api(registry, audit_log=tmp_path / "audit.jsonl", api_keys=(), backoff=0.01, **kw)


def _passthrough_pool(folder, base_url):
    """A pool whose slots declare that their upstream speaks Responses (the body passed through)."""
    path = write_pool(folder, base_url, policy="respool")
    cfg = yaml.safe_load(path.read_text())
    for m in cfg["models"]:
        m["upstream_api"] = "responses"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("passthrough", [False, True], ids=["as-chat", "passthrough"])
@pytest.mark.parametrize("mode,stream", [("trickle", False), ("trickle", True), ("hang", False), ("hang", True)])
def test_a_slow_upstream_is_bounded_by_the_deadline(tmp_path, mode, stream, passthrough):
    with RawUpstream(mode, interval=0.2) as up:
        pool = _passthrough_pool(tmp_path, up.base_url) if passthrough else write_pool(tmp_path, up.base_url)
        srv = serve_api(make_registry(pool), audit_log=tmp_path / "audit.jsonl", api_keys=(), backoff=0.01,
                        timeout=1.0, deadline=2.0)
        try:
            t0 = time.perf_counter()
            r = httpx.post(f"{srv.url}/v1/responses", timeout=30,
                           json={"model": "respool" if passthrough else POLICY, "input": Q, "stream": stream})
            took = time.perf_counter() - t0
        finally:
            srv.stop()
    assert r.status_code == 504, r.text
    assert r.json()["error"]["code"] == "deadline_exceeded"
    # before: the passthrough's timeout bounded each socket read only (a trickle never timed out) and
    # the chat translation had no deadline (a hang cost retries x models x timeout, 9 s here)
    assert took < 2.0 + 4, took  # slack for a loaded machine; the encoder pass counts too
    line = audit_lines(tmp_path / "audit.jsonl")[-1]
    assert line["status"] == "error" and "deadline" in line["error"]


def _finals(lines: list[dict], rid: str | None = None) -> list[dict]:
    return [r for r in lines if r["status"] != "started" and (rid is None or r["request_id"] == rid)]


def _post_then_hang_up(srv, path: str, body: dict, called) -> None:
    """Send the request on a raw socket, wait until the upstream has been called, then close the socket."""
    data = json.dumps(body).encode()
    with socket.create_connection((srv.host, srv.port)) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n%s" % (path.encode(), len(data), data))
        wait_until = time.time() + 30
        while not called() and time.time() < wait_until:
            time.sleep(0.02)


@pytest.mark.parametrize("path,stream", [("/v1/responses", False), ("/v1/responses", True),
                                         ("/v1/chat/completions", True), ("/v1/messages", True)])
def test_a_client_that_hangs_up_before_the_answer_cancels_the_upstream_call(tmp_path, path, stream):
    """Streams included: a client gone while the proxy waits for the first chunk cancels that wait too."""
    with RawUpstream("hang") as up:
        srv = _proxy(tmp_path, up.base_url, timeout=30, deadline=60)
        try:
            _post_then_hang_up(srv, path, {**BODIES[path], "stream": stream}, lambda: up.opened >= 1)
            wait_until = time.time() + 5
            while up.closed_early < 1 and time.time() < wait_until:
                time.sleep(0.05)
            lines = wait_audit_lines(tmp_path / "audit.jsonl", 1, wait=5)
        finally:
            srv.stop()
        assert up.closed_early == 1 and up.opened == 1  # cancelled, and no retry for nobody
        assert len(lines) == 1  # one line: no stream was opened, so no "started" line
        assert lines[0]["status"] == "client_closed" and "closed the connection" in lines[0]["error"]


def test_a_streaming_client_that_hangs_up_cancels_the_upstream_and_records_usage(tmp_path):
    with RawUpstream("stall_stream", interval=0.1) as up:
        srv = _proxy(tmp_path, up.base_url, timeout=30, deadline=60)
        try:
            with httpx.stream("POST", f"{srv.url}/v1/responses", json={**BODIES["/v1/responses"], "stream": True},
                              timeout=30) as r:
                for line in r.iter_lines():
                    if "response.output_text.delta" in line and "Hel" in line:
                        break  # leaving the block closes the connection mid-stream
            wait_until = time.time() + 5
            while up.closed_early < 1 and time.time() < wait_until:
                time.sleep(0.05)
            lines = wait_audit_lines(tmp_path / "audit.jsonl", 2, wait=5)
        finally:
            srv.stop()
    assert up.closed_early == 1
    started, final = lines[-2], lines[-1]
    assert started["status"] == "started" and final["request_id"] == started["request_id"]
    assert final["api"] == "responses" and final["status"] == "client_closed" and len(_finals(lines)) == 1
    assert final["usage"]["completion_tokens"] == 1 and final["usage"]["prompt_tokens"] > 0
    assert final["usage_estimated"] is True


def test_a_stream_that_breaks_midway_fails_and_keeps_its_usage(server, stub, audit_path):
    for name in ("cheap", "mid", "strong", "best"):
        stub.behave(dest(name), answer="one two three four five", drop_after=2)
    with httpx.stream("POST", f"{server.url}/v1/responses", json={**BODIES["/v1/responses"], "stream": True},
                      timeout=30) as r:
        rid = r.headers["x-router-request-id"]
        events = [json.loads(x[5:]) for x in r.iter_lines() if x.startswith("data:")]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == "one two" and events[-1]["type"] == "response.failed"
    assert "failed midway" in events[-1]["response"]["error"]["message"]
    lines = _wait_final(audit_path, rid)
    assert len(lines) == 1, lines  # exactly one final line
    final = lines[0]
    assert final["status"] == "error" and "broke off midway" in final["error"]
    # the two chunks the client got were billed: the old relay audited usage null here
    assert final["usage"]["completion_tokens"] == 2 and final["usage_estimated"] is True


@pytest.mark.parametrize("path,terminal", [("/v1/responses", "response.failed"), ("/v1/messages", "error")])
def test_a_chunk_that_cannot_be_translated_ends_the_stream_with_an_error_and_one_audit_line(
        server, stub, audit_path, path, terminal):
    for name in ("cheap", "mid", "strong", "best"):
        stub.behave(dest(name), answer="one two three", inject_chunk=BAD_CHUNK)
    with httpx.stream("POST", f"{server.url}{path}", json={**BODIES[path], "stream": True}, timeout=30) as r:
        rid = r.headers["x-router-request-id"]
        body = r.read().decode()
    assert r.status_code == 200 and f"event: {terminal}" in body and "AttributeError" in body
    lines = _wait_final(audit_path, rid)
    assert len(lines) == 1, lines
    final = lines[0]
    # before the shared relay: audited "client_closed" (the exception left the relay) with no usage
    assert final["status"] == "error" and "the stream failed midway: AttributeError" in final["error"]
    assert final["usage"]["completion_tokens"] == 1 and final["usage"]["prompt_tokens"] > 0


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/messages"])
def test_a_plain_answer_that_cannot_be_translated_is_a_502_audited_with_its_usage(server, stub, audit_path, path):
    for name in ("cheap", "mid", "strong", "best"):
        stub.behave(dest(name), answer="forty two", message_extra={"tool_calls": "oops"},
                    usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11})
    r = httpx.post(f"{server.url}{path}", json=BODIES[path], timeout=30)
    assert r.status_code == 502, r.text  # a malformed upstream answer, not an internal error
    body = r.json()
    message = body["error"]["message"]
    assert "could not be translated" in message and body["router"]["selected"]
    rid = r.headers["x-router-request-id"]
    lines = _wait_final(audit_path, rid)
    assert len(lines) == 1 and lines[0]["status"] == "error" and lines[0]["selected"] == body["router"]["selected"]
    assert lines[0]["usage"] == {"prompt_tokens": 9, "completion_tokens": 2} and lines[0]["actual_cost_usd"] > 0


def _wait_final(path, rid: str, wait: float = 10.0) -> list[dict]:
    deadline = time.time() + wait
    while not _finals(audit_lines(path), rid) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # a second final line would come right after the first
    return _finals(audit_lines(path), rid)


# ---- slots whose upstream speaks Responses (the body passed through) ---------------------------

@pytest.fixture(scope="module")
def passthrough(stub, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rpool")
    path = _passthrough_pool(folder, stub.base_url)
    srv = serve_api(make_registry(path), audit_log=folder / "audit.jsonl", api_keys=(), backoff=0.01)
    yield srv, folder / "audit.jsonl"
    srv.stop()


def test_passthrough_client_hanging_up_before_the_answer(passthrough, stub):
    srv, audit = passthrough
    for name in ("cheap", "mid", "strong", "best"):
        stub.behave(dest(name), delay=30)
    t0 = time.time()
    _post_then_hang_up(srv, "/v1/responses", {"model": "respool", "input": Q}, lambda: len(stub.calls()) >= 1)
    lines = wait_audit_lines(audit, 1, wait=10)
    took = time.time() - t0
    assert took < 10, took  # not the upstream's 30 s: the call was cancelled
    assert lines[-1]["status"] == "client_closed" and lines[-1]["api"] == "responses"
    time.sleep(0.5)
    assert len(stub.calls()) == 1  # and not retried on the next slot for nobody


@pytest.mark.parametrize("usage", [None, {"input_tokens": "x", "output_tokens": 3}])
def test_passthrough_answer_without_usable_usage_is_estimated(passthrough, stub, usage):
    """It used to be audited without usage, so the budgets counted the call as free."""
    srv, audit = passthrough
    for name in ("cheap", "mid", "strong", "best"):
        stub.behave(dest(name), answer="Paris is the capital of France.", usage=usage, no_usage=usage is None)
    r = httpx.post(f"{srv.url}/v1/responses", json={"model": "respool", "input": Q}, timeout=30)
    assert r.status_code == 200, r.text
    rid = r.headers["x-router-request-id"]
    deadline = time.time() + 10
    while time.time() < deadline and not [x for x in audit_lines(audit) if x["request_id"] == rid]:
        time.sleep(0.05)
    (line,) = [x for x in audit_lines(audit) if x["request_id"] == rid]
    assert line["usage_estimated"] is True and line["cost_basis"] == "estimate"
    assert line["usage"]["prompt_tokens"] > 0 and line["usage"]["completion_tokens"] > 0


def test_passthrough_stream_client_hanging_up_midway(passthrough, stub):
    srv, audit = passthrough
    before = len(audit_lines(audit)) if audit.exists() else 0
    for name in ("cheap", "mid", "strong", "best"):
        stub.behave(dest(name), chunk_delay=0.5)
    with httpx.stream("POST", f"{srv.url}/v1/responses", json={"model": "respool", "input": Q, "stream": True},
                      timeout=30) as r:
        rid = r.headers["x-router-request-id"]
        for line in r.iter_lines():
            if "response.created" in line:
                break
    lines = [x for x in wait_audit_lines(audit, before + 2, wait=10) if x["request_id"] == rid]
    assert [x["status"] for x in lines] == ["started", "client_closed"]
    # the upstream's usage comes with its last event, which never came: the prompt tokens are estimated
    assert lines[-1]["usage"]["prompt_tokens"] > 0 and lines[-1]["usage_estimated"] is True


def test_passthrough_stream_fails_over_before_its_first_event(passthrough, stub):
    """The shared failover opens passthrough streams too: a slot answering 500 is skipped for the next."""
    srv, audit = passthrough
    ask = {"model": "respool", "input": Q, "stream": True}

    def run() -> tuple[list[dict], str]:
        with httpx.stream("POST", f"{srv.url}/v1/responses", json=ask, timeout=30) as r:
            assert r.status_code == 200
            events = [json.loads(x[5:]) for x in r.iter_lines() if x.startswith("data:")]
            return events, r.headers["x-router-request-id"]

    events, _ = run()
    chosen = events[-1]["response"]["router"]["selected"]
    stub.behave(dest(chosen), fail_status=500, fail_times=-1)
    events, rid = run()
    info = events[-1]["response"]["router"]
    assert events[-1]["type"] == "response.completed" and info["selected"] != chosen
    assert [a["status"] for a in info["attempts"] if a["slot"] == chosen] == [500, 500, 500]  # retried, then next
    final = _wait_final(audit, rid)[0]
    assert final["status"] == "ok" and final["selected"] == info["selected"] and final["usage"]["prompt_tokens"] == 7


@pytest.mark.parametrize("stream", [False, True])
def test_a_missing_upstream_key_is_a_503_naming_it_after_every_slot_was_tried(tmp_path, stub, stream):
    pool = write_pool(tmp_path, stub.base_url, key_env="RESPONSES_TEST_KEY")  # never set
    srv = serve_api(make_registry(pool), audit_log=tmp_path / "audit.jsonl", api_keys=(), backoff=0.01)
    try:
        r = httpx.post(f"{srv.url}/v1/responses", json={**BODIES["/v1/responses"], "stream": stream}, timeout=30)
    finally:
        srv.stop()
    assert r.status_code == 503 and r.json()["error"]["code"] == "missing_upstream_key"
    assert "RESPONSES_TEST_KEY" in r.json()["error"]["message"]
    attempts = r.json()["router"]["attempts"]
    assert len(attempts) == len({a["slot"] for a in attempts}) >= 2  # one per slot of the plan, none sent
    assert all("RESPONSES_TEST_KEY" in a["error"] for a in attempts) and stub.calls() == []
    [line] = audit_lines(tmp_path / "audit.jsonl")
    assert line["status"] == "error" and line["api"] == "responses"
