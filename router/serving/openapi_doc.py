"""The OpenAPI document lists the errors the API really answers (FastAPI's default lists a 422 that
never happens: validation errors are 400s here), each in its API's error shape, and says that a
chat or messages call may answer with an event stream. Clients and fuzzers (schemathesis' status
code and content-type checks) read this document.
"""

from __future__ import annotations

from typing import Any

OPENAI_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["message", "type", "param", "code"],
    "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                   "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}}
ANTHROPIC_ERROR = {"type": "object", "required": ["type", "error"], "properties": {
    "type": {"const": "error"}, "error": {"type": "object", "required": ["type", "message"],
                                          "properties": {"type": {"type": "string"}, "message": {"type": "string"}}}}}

# One server-sent event (when `stream` is true); `data` is a JSON chunk or OpenAI's final "[DONE]".
SSE_EVENT = {"type": "object", "description": "one server-sent event", "properties": {
    "event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"},
    "retry": {"type": "integer"}}}

WHY = {400: "Bad input (a field, the JSON, a lone surrogate or a non-finite number), or the upstream rejected it",
       401: "Missing or invalid API key (when ROUTER_API_KEYS is set)",
       404: "Unknown policy, slot or model name",
       413: "Request body over the size limit (--max-body)",
       502: "Every upstream model tried failed",
       503: "The chosen slot's upstream API key is not configured on the server",
       504: "The request's total deadline (--deadline) ran out"}

INPUT = (400, 401, 404, 413)
UPSTREAM = INPUT + (502, 503, 504)
STATUSES = {("/v1/route", "post"): INPUT, ("/v1/chat/completions", "post"): UPSTREAM,
            ("/v1/messages", "post"): UPSTREAM, ("/v1/messages/count_tokens", "post"): INPUT,
            ("/v1/models", "get"): (401,)}
STREAMS = {("/v1/chat/completions", "post"), ("/v1/messages", "post")}


def _fix(doc: dict[str, Any]) -> dict[str, Any]:
    comps = doc.setdefault("components", {}).setdefault("schemas", {})
    comps["OpenAIError"], comps["AnthropicError"] = OPENAI_ERROR, ANTHROPIC_ERROR
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            shape = "AnthropicError" if path.startswith("/v1/messages") else "OpenAIError"
            for status in STATUSES.get((path, method), ()):
                responses[str(status)] = {"description": WHY[status], "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{shape}"}}}}
            if (path, method) in STREAMS and "200" in responses:
                responses["200"].setdefault("content", {})["text/event-stream"] = {"schema": SSE_EVENT}
    comps.pop("HTTPValidationError", None)
    comps.pop("ValidationError", None)
    return doc


def document_errors(app) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _fix(build())
        return app.openapi_schema

    app.openapi = openapi
