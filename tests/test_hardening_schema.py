"""Schema and config fixes (issue 12, items 7 and 8): shapes the schema let through no longer make
500s, config mistakes are refused at load, and the OpenAPI document lists the real errors."""

from __future__ import annotations

import httpx
import pytest
import yaml

from router.errors import CheckpointError, ConfigError
from router.routing.pool import load_pool
from router.routing.router import PrefillRouter

from .proxy_env import POLICY, audit_for, dest, write_pool
from .serving import ServerThread


def _pool_file(tmp_path, stub, edit):
    path = write_pool(tmp_path, stub.base_url)
    cfg = yaml.safe_load(path.read_text())
    edit(cfg)
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_an_infinite_price_is_refused_at_load(tmp_path, stub):
    path = _pool_file(tmp_path, stub, lambda c: c["models"][1].update(cost_per_m_output_tokens=float("inf")))
    with pytest.raises(ConfigError, match=r"models\[1\].cost_per_m_output_tokens.*finite"):
        load_pool(path)


def test_a_pool_with_every_slot_disabled_is_refused_when_routing(tmp_path, stub):
    path = _pool_file(tmp_path, stub, lambda c: [m.update(enabled=False) for m in c["models"]])
    with pytest.raises(ConfigError, match="every slot has enabled: false"):
        PrefillRouter.from_config(path)


def test_a_missing_checkpoint_names_the_yaml_and_field(tmp_path, stub):
    path = _pool_file(tmp_path, stub, lambda c: c.update(checkpoint=str(tmp_path / "nope")))
    with pytest.raises(CheckpointError) as e:
        PrefillRouter.from_config(path)
    assert str(path) in str(e.value) and "checkpoint:" in str(e.value) and "nope" in str(e.value)


def test_a_stream_that_dies_after_its_role_chunk_fails_over(server, stub, registry, audit_path):
    chosen = registry.get(POLICY).route("What is the capital of Peru?", tolerance=0.3).chosen
    stub.behave(dest(chosen), drop_after=0)  # the role chunk, then the connection drops
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", timeout=60,
                      json={"model": POLICY, "stream": True, "tolerance": 0.3,
                            "messages": [{"role": "user", "content": "What is the capital of Peru?"}]}) as r:
        text = "".join(line for line in r.iter_lines())
        rid = r.headers["x-router-request-id"]
    assert "upstream_stream_broken" not in text and text.endswith("data: [DONE]")
    assert '"content":" capital"' in text  # the answer came, from the next model
    line = audit_for(audit_path, rid)
    assert line["status"] == "ok" and line["selected"] != chosen and line["attempts"][0]["slot"] == chosen


def test_openapi_lists_the_real_errors_not_422(server):
    doc = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    for path, statuses in {"/v1/route": {"400", "401", "404", "413"},
                           "/v1/chat/completions": {"400", "401", "404", "413", "502", "503", "504"},
                           "/v1/messages": {"400", "401", "404", "413", "502", "503", "504"},
                           "/v1/messages/count_tokens": {"400", "401", "404", "413"}}.items():
        responses = doc["paths"][path]["post"]["responses"]
        assert "422" not in responses and statuses <= set(responses), (path, sorted(responses))
    assert "text/event-stream" in doc["paths"]["/v1/messages"]["post"]["responses"]["200"]["content"]
    ref = doc["paths"]["/v1/messages"]["post"]["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("AnthropicError")


def test_unknown_paths_under_the_full_app_answer_in_the_apis_shape(tmp_path, stub):
    import app

    from .proxy_env import make_registry

    registry = make_registry(write_pool(tmp_path, stub.base_url))
    with ServerThread(app.create_app(registry=registry)) as srv:
        r = httpx.post(f"{srv.url}/v1/nope", json={}, timeout=30)
        assert r.status_code == 404 and r.json()["error"]["message"].startswith("no such endpoint")
        r = httpx.post(f"{srv.url}/v1/messages/nope", json={}, timeout=30)
        assert r.status_code == 404 and r.json()["type"] == "error"
        r = httpx.get(f"{srv.url}/v1/route", timeout=30)
        assert r.status_code == 405 and "POST" in r.headers["allow"] and "error" in r.json()
        assert httpx.get(f"{srv.url}/health", timeout=30).status_code == 200


def _conforms(doc: dict, path: str, method: str, r: httpx.Response) -> None:
    """The answer's status is documented for the operation and its JSON body matches that schema."""
    from jsonschema import Draft202012Validator

    documented = doc["paths"][path][method]["responses"]
    assert str(r.status_code) in documented, (path, r.status_code, sorted(documented))
    schema = documented[str(r.status_code)]["content"]["application/json"]["schema"]
    # the document's components ride along, so that "#/components/schemas/..." resolves
    Draft202012Validator({**schema, "components": doc["components"]}).validate(r.json())


def test_budget_sensitivity_and_readiness_answers_match_the_openapi_document(tmp_path, stub):
    """What the fuzzing pool never shows (no caps, no rules, every key present): caps in /v1/budgets,
    a 403 and a 429 on each routing endpoint, a 503 "not ready", all as the document says."""
    from .governance_env import write_pool as governance_pool
    from .proxy_env import make_registry, serve_api

    pool = governance_pool(tmp_path, stub.base_url, stub.base_url,
                           budgets=[{"scope": "policy", "period": "day", "usd": 0.0, "mode": "hard"}])
    srv = serve_api(make_registry(pool), api_keys=(), backoff=0.01)
    try:
        doc = httpx.get(f"{srv.url}/openapi.json", timeout=30).json()
        ready = httpx.get(f"{srv.url}/health/ready", timeout=30)
        assert ready.status_code == 503 and ready.json()["pools"][0]["missing_keys"]  # the cloud key is unset
        _conforms(doc, "/health/ready", "get", ready)
        budgets = httpx.get(f"{srv.url}/v1/budgets", timeout=30)
        assert budgets.json()["data"][0]["reached"] is True
        _conforms(doc, "/v1/budgets", "get", budgets)
        _conforms(doc, "/v1/models/{model_id}", "get", httpx.get(f"{srv.url}/v1/models/govpool", timeout=30))
        _conforms(doc, "/v1/models/{model_id}", "get", httpx.get(f"{srv.url}/v1/models/nope", timeout=30))
        secret = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
        bodies = {"/v1/route": lambda q: {"question": q},
                  "/v1/chat/completions": lambda q: {"messages": [{"role": "user", "content": q}]},
                  "/v1/messages": lambda q: {"max_tokens": 20, "messages": [{"role": "user", "content": q}]},
                  "/v1/responses": lambda q: {"input": q}}
        for path, body in bodies.items():
            for text, status in ((f"Check this key: {secret}", 403), ("What is the capital of France?", 429)):
                r = httpx.post(f"{srv.url}{path}", json=body(text), timeout=60)
                assert r.status_code == status, (path, r.status_code, r.text[:300])
                _conforms(doc, path, "post", r)
    finally:
        srv.stop()
    assert stub.calls() == []  # refused before any upstream call
