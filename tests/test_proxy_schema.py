"""Schemathesis fuzzes every endpoint of the app's own OpenAPI schema, /v1/messages and
/v1/messages/count_tokens included, with all of its checks (not only "no 5xx"): documented status
codes and content types, response schemas, invalid data rejected, valid data accepted, and so on.
Any failure is a bug in the API or in its schema (docs/hardening.md records what this found).

Bounded (examples per operation, no deadline) so it stays fast on a small CPU.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

MAX_EXAMPLES = 12
# The 400s a schema-valid request may still get, each for a rule the schema cannot express.
SEMANTIC_RULES = ("send exactly one of question", "has no user turn", "last user message is empty",
                  "query is empty", "messages is empty", "models is empty", "no model is enabled",
                  "is not supported by the translation")
# The Anthropic and Responses translations name the field they refuse (messages[3].content[0]: ..., input[0]: ...);
# Responses' stateful features are refused by name (previous_response_id, item_reference).
FIELD_PATH = re.compile(r"^(messages|system|tools|tool_choice|input|instructions|text|previous_response_id)"
                        r"(\[\d+\])?[\w.\[\]]*: ")
OPERATIONS = [("/v1/route", "POST"), ("/v1/chat/completions", "POST"), ("/v1/messages", "POST"),
              ("/v1/messages/count_tokens", "POST"), ("/v1/responses", "POST"), ("/v1/models", "GET"),
              ("/v1/models/{model_id}", "GET"), ("/v1/budgets", "GET"), ("/api/models", "GET"), ("/health", "GET"),
              ("/health/ready", "GET")]


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_every_operation_is_fuzzed(api_schema):
    listed = {(r.ok().path, r.ok().method.upper()) for r in api_schema.get_all_operations()}
    assert listed == set(OPERATIONS)


# Hypothesis is driven directly: schemathesis' lazy pytest fixtures do not run under this pytest.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("path,method", OPERATIONS)
def test_all_checks_pass(api_schema, server, stub, path, method, mode):
    if method == "GET" and mode is GenerationMode.NEGATIVE:
        # no body and at most a string path parameter (/v1/models/{model_id}): any string is valid
        pytest.skip("nothing invalid to send")
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        # Every check but one: "schema-valid data is accepted" cannot hold where the API has rules
        # JSON Schema does not state (exactly one of question/messages; a user turn with text), so
        # for valid-by-schema requests a 400 is allowed, and must then name what to fix (below).
        response = case.call_and_validate(base_url=server.url, timeout=60,
                                          excluded_checks=[checks.positive_data_acceptance])
        if mode is GenerationMode.POSITIVE and response.status_code == 400:
            message = response.json()["error"]["message"]
            # a known rule, or the Anthropic translation naming the field it refuses (messages[3].content[0]: ...)
            assert any(rule in message for rule in SEMANTIC_RULES) or FIELD_PATH.match(message), message
        if response.status_code >= 400:  # and the error is in the calling API's shape
            body = response.json()
            if path.startswith("/v1/messages"):
                assert body["type"] == "error" and set(body["error"]) >= {"type", "message"}
            else:
                err = body["error"]
                assert set(err) >= {"message", "type", "param", "code"} and err["message"]

    check()
