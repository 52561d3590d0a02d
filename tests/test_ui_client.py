"""The playground through its Gradio API: app.create_app served by uvicorn on a free port, driven by gradio_client.

Relations only (chosen = cheapest enabled at tolerance 1, best at 0, ...): the checkpoint may be retrained.
"""

from __future__ import annotations

import json
import re

import pytest
from gradio_client import Client, handle_file

from router.routing.pool import load_pool
from router.routing.registry import RouterRegistry

from .serving import ServerThread
from .ui_helpers import stub_pool_yaml
from .upstream_stub import UpstreamStub

QUERY = "Write a Python decorator that retries a function three times."
ALL = load_pool().names  # every slot of the default pool switched on


def _chosen(html: str) -> str:
    return re.search(r"data-chosen='([^']+)'", html).group(1)


@pytest.fixture(scope="module")
def app_url():
    import app

    with ServerThread(app.create_app()) as server:
        yield server.url


@pytest.fixture(scope="module")
def registry():
    return RouterRegistry.from_paths()


_OPEN: list[Client] = []


def _client(url: str) -> Client:
    c = Client(url + "/", verbose=False, download_files=False)
    _OPEN.append(c)
    return c


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    while _OPEN:  # an open client keeps a heartbeat stream that would stall the server's shutdown
        _OPEN.pop().close()


def test_route_then_slider_rechooses_without_new_query(app_url, registry):
    router = registry.get()
    names = router.pool.names
    c = _client(app_url)
    out = c.predict("default", QUERY, 0.0, names, api_name="/route")
    decision, table, stats = out[0], out[2], out[3]
    expected0 = router.route(QUERY, 0.0)
    assert _chosen(decision) == expected0.chosen == expected0.best
    assert re.findall(r"<tr data-slot='([^']+)'", table) and len(re.findall(r"<tr data-slot=", table)) == len(names)
    assert ">1</span>queries" in stats
    out = c.predict("default", 1.0, names, api_name="/redecide")
    assert _chosen(out[0]) == router.route(QUERY, 1.0).chosen
    assert ">1</span>queries" in out[3]  # the same query re-decided, not a new one


def test_disabled_model_is_never_chosen(app_url, registry):
    router = registry.get()
    c = _client(app_url)
    out = c.predict("default", QUERY, 1.0, router.pool.names, api_name="/route")
    cheapest = _chosen(out[0])
    enabled = [n for n in router.pool.names if n != cheapest]
    for t in (0.0, 0.3, 0.6, 1.0):
        out = c.predict("default", t, enabled, api_name="/redecide")
        assert _chosen(out[0]) != cheapest
        assert _chosen(out[0]) == router.route(QUERY, t, enabled).chosen
    assert f"<tr data-slot='{cheapest}' data-status='off'" in out[2]  # the cost table marks it off


def test_sessions_are_isolated_and_reset(app_url):
    a, b = _client(app_url), _client(app_url)
    a.predict("default", "What is 2 + 2?", 0.2, ALL, api_name="/route")
    a.predict("default", "What is the capital of France?", 0.2, ALL, api_name="/route")
    out_b = b.predict("default", "Hello there", 0.2, ALL, api_name="/route")
    assert ">1</span>queries" in out_b[3]
    reset = a.predict("default", api_name="/reset")
    assert "No queries yet" in reset[0] and reset[3]["data"] in ([], [[""] * 10], None)


def test_unknown_query_errors_are_readable(app_url):
    c = _client(app_url)
    with pytest.raises(Exception, match="query is empty"):
        c.predict("default", "   ", 0.2, ALL, api_name="/route")
    with pytest.raises(Exception, match="no model is enabled"):
        c.predict("default", "hi", 0.2, [], api_name="/route")


def test_sweep_samples_and_upload(app_url, tmp_path):
    c = _client(app_url)
    params = c.view_api(print_info=False, return_format="dict")["named_endpoints"]["/sweep"]["parameters"]
    assert all(p["parameter_has_default"] for p in params), params  # the upload too: without it, the samples
    assert "11 tolerances" in c.predict(policy="default", enabled=ALL, api_name="/sweep")[0]
    out = c.predict("default", ALL, None, 0.0, 0.5, 0.05, api_name="/sweep")
    summary, _mix, _curve, table = out
    assert "× 11 tolerances" in summary and len(table["data"]) == 11
    assert [r[0] for r in table["data"]][:3] == [0.0, 0.05, 0.1]
    f = tmp_path / "qs.txt"
    f.write_text("What is 2 + 2?\nExplain quicksort.\nProve Fermat's little theorem.\n", encoding="utf-8")
    out = c.predict("default", ALL, handle_file(str(f)), 0.0, 1.0, 0.25, api_name="/sweep")
    assert "3 questions × 5 tolerances" in out[0]
    assert all(r[1] == 3 for r in out[3]["data"])
    bad = tmp_path / "qs.jsonl"
    bad.write_text("{nope\n", encoding="utf-8")
    with pytest.raises(Exception, match="qs.jsonl:1"):
        c.predict("default", ALL, handle_file(str(bad)), 0.0, 0.5, 0.05, api_name="/sweep")


def test_projection_from_sweep_and_session(app_url):
    c = _client(app_url)
    html = c.predict("default", 1.0, ALL, 10, 100, 1000, 500, "tolerance sweep", api_name="/project")[0]
    assert "1,000</span>requests" in html and "saved" in html
    with pytest.raises(Exception, match="no queries routed"):
        c.predict("default", 0.2, ALL, 10, 100, 1000, 500, "this session", api_name="/project")
    c.predict("default", QUERY, 0.2, ALL, api_name="/route")
    html = c.predict("default", 0.2, ALL, 10, 100, 1000, 500, "this session", api_name="/project")[0]
    assert "1 routed query (a small sample" in html
    with pytest.raises(Exception, match="team size must be at most"):
        c.predict("default", 0.2, ALL, 1e12, 100, 1000, 500, "tolerance sweep", api_name="/project")


def test_export_jsonl_matches_audit_format(app_url):
    from router.audit.record import DecisionRecord

    c = _client(app_url)
    c.predict("default", QUERY, 0.1, ALL, api_name="/route")
    c.predict("default", "What is 2 + 2?", 0.4, ALL, api_name="/route")
    path = c.predict(api_name="/export")
    path = path.get("value", path) if isinstance(path, dict) and "__type__" in path else path
    url = path["url"] if isinstance(path, dict) else path
    import httpx

    text = httpx.get(url).text if str(url).startswith("http") else open(url, encoding="utf-8").read()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [r["tolerance"] for r in lines] == [0.1, 0.4]
    stats, _dist, table = c.predict("default", api_name="/session_view")
    assert ">2</span>queries" in stats and len(table["data"]) == 2
    keys = set(DecisionRecord.build(None).to_line())
    assert all(keys <= set(r) for r in lines)


def test_send_streams_from_stub_and_shows_cost(tmp_path):
    import app

    with UpstreamStub() as stub:
        stub.behave("stub/small-model", answer="Four. Two plus two is four, always.")
        # The most expensive slot judges (auto review); at tolerance 1 the cheap one answers.
        stub.behave("stub/large-model", answer='```json\n{"correct": true, "reason": "2 + 2 = 4."}\n```')
        registry = RouterRegistry.from_paths([stub_pool_yaml(tmp_path, stub.base_url)])
        with ServerThread(app.create_app(registry=registry)) as server:
            c = _client(server.url)
            c.predict("stubpool", "What is 2 + 2?", 1.0, ["stub-small", "stub-large"], api_name="/route")
            job = c.submit(True, True, api_name="/send")
            final = job.result()
            updates = job.outputs()
    meta, answer, verdict = final[0], final[1], final[2]
    assert answer == "Four. Two plus two is four, always."
    assert len(updates) > 2  # streamed: partial answers arrived before the last one
    assert "actual cost" in meta and "real usage" in meta
    assert "Stub Small" in meta
    assert "Review by <b>Stub Large</b>: <b>correct</b>" in verdict and "2 + 2 = 4." in verdict


def test_send_without_key_says_which_variable_and_keeps_the_decision(app_url):
    c = _client(app_url)
    out = c.predict("default", "What is 2 + 2?", 0.2, ALL, api_name="/route")
    chosen = _chosen(out[0])
    final = c.predict(True, False, api_name="/send")
    assert "OPENROUTER_API_KEY" in final[0] and "decision above still stands" in final[0]
    assert chosen in ALL


def test_send_off_changes_nothing(app_url):
    c = _client(app_url)
    c.predict("default", "What is 2 + 2?", 0.2, ALL, api_name="/route")
    before = c.predict("default", api_name="/session_view")
    c.predict(False, False, api_name="/send")  # skipped: no upstream call, no error
    after = c.predict("default", api_name="/session_view")
    assert after == before and ">1</span>queries" in after[0]
    # the session's one record still has no answer: nothing was sent
    path = c.predict(api_name="/export")
    path = path.get("value", path) if isinstance(path, dict) and "__type__" in path else path
    url = path["url"] if isinstance(path, dict) else path
    import httpx

    text = httpx.get(url).text if str(url).startswith("http") else open(url, encoding="utf-8").read()
    [line] = [json.loads(x) for x in text.splitlines()]
    assert line["selected"] is None and line["usage"] is None and line["actual_cost_usd"] is None


def test_pool_switch_resets_slider_and_toggles(app_url, registry):
    other = next(p for p in registry.policies if p != registry.default)
    pool = registry.get(other).pool
    c = _client(app_url)
    info, tolerance, models = c.predict(other, api_name="/pool")
    assert tolerance["value"] == pool.default_tolerance
    assert sorted(models["value"]) == sorted(s.name for s in pool.models if s.enabled)
    assert [v for _label, v in models["choices"]] == pool.names
    assert f"<b>{len(pool.models)}</b> models" in info


def test_decide_returns_the_routing_result_as_data(app_url, registry):
    """Issue 15: a script gets the RoutingResult itself, documented in view_api, not HTML."""
    router = registry.get()
    c = _client(app_url)
    api = c.view_api(print_info=False, return_format="dict")
    named = api["named_endpoints"]
    assert "/decide" in named and "/route" in named  # the data API, and the page's HTML endpoints stay
    params = [p["parameter_name"] for p in named["/decide"]["parameters"]]
    assert params[:4] == ["query", "policy", "tolerance", "models"]
    out = c.predict(QUERY, "default", 0.0, None, api_name="/decide")
    assert isinstance(out, dict)
    ref = router.route(QUERY, 0.0)
    assert out["chosen"] == ref.chosen == out["best"] and out["policy"] == "default"
    assert out["threshold"] == pytest.approx(ref.threshold) and out["input_tokens"] == ref.input_tokens
    assert [m["name"] for m in out["models"]] == router.pool.names
    assert {m["name"]: m["p"] for m in out["models"]} == pytest.approx(ref.probabilities)
    cheap = c.predict(QUERY, None, 1.0, None, api_name="/decide")  # empty policy: the default pool
    assert cheap["chosen"] == router.route(QUERY, 1.0).chosen
    only = c.predict(QUERY, "mixed-local", 0.2, ["claude-opus-4-6-high"], api_name="/decide")
    assert only["chosen"] == "claude-opus-4-6-high" and only["candidates"] == ["claude-opus-4-6-high"]
    with pytest.raises(Exception, match="unknown policy"):
        c.predict(QUERY, "nope", 0.2, None, api_name="/decide")
    with pytest.raises(Exception, match="tolerance must be in"):
        c.predict(QUERY, "default", 3.0, None, api_name="/decide")


def test_compare_and_design_endpoints(app_url, registry, tmp_path):
    c = _client(app_url)
    html = c.predict(["default", "mixed-local"], "0.05, 0.10, 0.20", None, api_name="/compare")[0]
    assert html.count("<tr class=") == 8 and "12 questions from the sample set" in html
    f = tmp_path / "qs.txt"
    f.write_text("What is 2 + 2?\nExplain quicksort.\n", encoding="utf-8")
    html = c.predict(["default"], "0.1", handle_file(str(f)), api_name="/compare")[0]
    assert "2 questions from file qs.txt" in html and html.count("<tr class=") == 2


def test_all_models_off_clears_the_choice_and_routing_again_is_one_query(app_url, registry):
    router = registry.get()
    c = _client(app_url)
    c.predict("default", QUERY, 0.2, ALL, api_name="/route")
    out = c.predict("default", QUERY, 0.2, ALL, api_name="/route")  # Route pressed twice: still one query
    assert ">1</span>queries" in out[3]
    off = c.predict("default", 0.2, [], api_name="/redecide")
    assert "data-chosen=''" in off[0] and "no model is enabled" in off[0] and off[1] is None
    back = c.predict("default", 0.2, ALL, api_name="/redecide")
    assert _chosen(back[0]) == router.route(QUERY, 0.2).chosen and ">1</span>queries" in back[3]


def test_route_api_takes_the_slots_of_the_pool_it_names(app_url, registry):
    """The toggles' choices are the default pool's; an API call under another pool used to be refused."""
    other = registry.get("mixed-local")
    c = _client(app_url)
    out = c.predict("mixed-local", QUERY, 0.2, other.pool.names, api_name="/route")
    assert _chosen(out[0]) == other.route(QUERY, 0.2).chosen
    with pytest.raises(Exception, match="'nope' not in pool 'mixed-local'"):
        c.predict("mixed-local", QUERY, 0.2, ["nope"], api_name="/route")


def test_out_of_range_inputs_are_a_message_naming_the_field(app_url):
    c = _client(app_url)
    c.predict("default", QUERY, 0.2, ALL, api_name="/route")
    with pytest.raises(Exception, match="Tolerance: Value -0.5 is less than minimum value 0"):
        c.predict("default", -0.5, ALL, api_name="/redecide")
    with pytest.raises(Exception, match="Team size: Value -3"):
        c.predict("default", 0.2, ALL, -3, 100, 1000, 500, "tolerance sweep", api_name="/project")
