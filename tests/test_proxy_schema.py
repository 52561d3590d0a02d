"""Schemathesis fuzzes /v1/route, /v1/chat/completions and /v1/responses from the app's own OpenAPI schema:
whatever it sends, the proxy answers without a 5xx (bad input is a 4xx in OpenAI's error shape).

Bounded (examples per operation, no deadline) so it stays fast on a small CPU.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

MAX_EXAMPLES = 40


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


# Hypothesis is driven directly: schemathesis' lazy pytest fixtures do not run under this pytest.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("path", ["/v1/route", "/v1/chat/completions", "/v1/responses"])
def test_no_server_errors(api_schema, server, path, mode):
    operation = api_schema[path]["POST"]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(base_url=server.url, timeout=60)
        assert response.status_code < 500, (response.status_code, response.text[:500], case.body)
        if response.status_code >= 400:
            err = response.json()["error"]
            assert set(err) == {"message", "type", "param", "code"} and err["message"]

    check()
