"""The OpenAPI document lists the errors the API really answers (FastAPI's default lists a 422 that
never happens: validation errors are 400s here), each in its API's error shape, says that a chat,
messages or responses call may answer with an event stream, and gives the bodies of the endpoints
whose return type says nothing (Responses, models, budgets, readiness). Clients and fuzzers (schemathesis' status
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
       403: "A sensitivity rule of the pool refuses this request (or where it may go)",
       404: "Unknown policy, slot or model name",
       413: "Request body over the size limit (--max-body)",
       429: "A hard budget cap of the pool is reached (Retry-After: seconds to the period's end)",
       502: "Every upstream model tried failed, or its answer could not be translated",
       503: "The chosen slot's upstream API key is not configured on the server, or no local slot may answer",
       504: "The request's total deadline (--deadline) ran out"}

NULLABLE_STRING = {"type": ["string", "null"]}
# The decision that rides along in a routed answer (DecisionRecord.router_info); pinned requests have
# only the first fields.
ROUTER_INFO = {"type": "object", "required": ["request_id", "policy", "pinned", "selected", "attempts"],
               "properties": {"request_id": {"type": "string"}, "policy": {"type": "string"},
                              "pinned": {"type": "boolean"}, "selected": NULLABLE_STRING, "model": NULLABLE_STRING,
                              "attempts": {"type": "array", "items": {"type": "object"}}}}
MODEL = {"type": "object", "required": ["id", "object", "created", "owned_by", "type", "display_name", "created_at"],
         "properties": {"id": {"type": "string"}, "object": {"const": "model"}, "created": {"type": "integer"},
                        "owned_by": {"type": "string"}, "type": {"const": "model"}, "display_name": {"type": "string"},
                        "created_at": {"type": "string"}}}
MODEL_LIST = {"type": "object", "required": ["object", "data", "has_more", "first_id", "last_id"],
              "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}},
                             "has_more": {"type": "boolean"}, "first_id": NULLABLE_STRING, "last_id": NULLABLE_STRING}}
BUDGET_CAP = {"type": "object", "required": ["policy", "scope", "period", "mode", "cap_usd", "spent_usd", "in_flight_usd",
                                             "remaining_usd", "reached", "resets_at", "resets_in_s"],
              "properties": {"policy": {"type": "string"}, "scope": {"enum": ["policy", "client", "slot"]}, "name": NULLABLE_STRING,
                             "period": {"enum": ["day", "month"]}, "mode": {"enum": ["soft", "hard"]},
                             "cap_usd": {"type": "number"}, "spent_usd": {"type": "number"},
                             "in_flight_usd": {"type": "number", "minimum": 0,
                                               "description": "estimated cost of calls that started and have not finished"},
                             "remaining_usd": {"type": "number"}, "reached": {"type": "boolean"},
                             "resets_at": {"type": "number"}, "resets_in_s": {"type": "integer", "minimum": 0}}}
BUDGETS = {"type": "object", "required": ["object", "client", "now", "data", "state"],
           "description": "Every budget cap that concerns the caller, with its spend and reset time",
           "properties": {"object": {"const": "list"}, "client": NULLABLE_STRING, "now": {"type": "number"},
                          "data": {"type": "array", "items": BUDGET_CAP}, "state": {"type": "object"}}}
READINESS = {"type": "object", "required": ["status", "upstream_client", "pools"],
             "properties": {"status": {"enum": ["ready", "not_ready"]}, "upstream_client": {"type": "boolean"},
                            "pools": {"type": "array", "items": {
                                "type": "object", "required": ["policy", "ready", "encoder_loaded", "missing_keys"],
                                "properties": {"policy": {"type": "string"}, "ready": {"type": "boolean"},
                                               "encoder_loaded": {"type": "boolean"},
                                               "missing_keys": {"type": "array", "items": {"type": "string"}}}}}}}
# OpenAI's Response object as this proxy answers it (a passthrough slot's upstream fills in the rest).
RESPONSE = {"type": "object", "required": ["id", "object", "created_at", "status", "model", "output", "router"],
            "properties": {"id": {"type": "string"}, "object": {"const": "response"},
                           "created_at": {"type": "number"},
                           "status": {"enum": ["completed", "incomplete", "failed", "in_progress", "cancelled", "queued"]},
                           "model": {"type": "string"},
                           "output": {"type": "array", "items": {"type": "object", "required": ["type"],
                                                                 "properties": {"type": {"type": "string"}}}},
                           "usage": {"type": ["object", "null"], "properties": {
                               "input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"},
                               "total_tokens": {"type": "integer"}}},
                           "error": {"type": ["object", "null"]},
                           "router": {"$ref": "#/components/schemas/RouterInfo"}}}
SCHEMAS = {"RouterInfo": ROUTER_INFO, "Model": MODEL, "ModelList": MODEL_LIST, "Budgets": BUDGETS,
           "Readiness": READINESS, "Response": RESPONSE}

INPUT = (400, 401, 404, 413)
ROUTED = INPUT + (403, 429)  # a routing call also runs the pool's sensitivity rules and budget caps
UPSTREAM = ROUTED + (502, 503, 504)
STATUSES = {("/v1/route", "post"): ROUTED, ("/v1/chat/completions", "post"): UPSTREAM,
            ("/v1/messages", "post"): UPSTREAM, ("/v1/messages/count_tokens", "post"): INPUT,
            ("/v1/responses", "post"): UPSTREAM, ("/v1/models", "get"): (401,),
            ("/v1/models/{model_id}", "get"): (401, 404), ("/v1/budgets", "get"): (401,)}
STREAMS = {("/v1/chat/completions", "post"), ("/v1/messages", "post"), ("/v1/responses", "post")}
# 200 bodies with a documented shape (the others are FastAPI's from the endpoint's return type).
OK_BODIES = {("/v1/responses", "post"): "Response", ("/v1/models", "get"): "ModelList",
             ("/v1/models/{model_id}", "get"): "Model", ("/v1/budgets", "get"): "Budgets",
             ("/health/ready", "get"): "Readiness"}
# Answers that are not errors in the API's shape: the readiness probe says "not ready" in its own body.
OTHER = {("/health/ready", "get"): {"503": {"description": "Not ready: an encoder is not loaded, an upstream key is "
                                                           "missing, or the upstream client is not up yet",
                                            "content": {"application/json": {"schema": {
                                                "$ref": "#/components/schemas/Readiness"}}}}}}


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _fix(doc: dict[str, Any]) -> dict[str, Any]:
    comps = doc.setdefault("components", {}).setdefault("schemas", {})
    comps["OpenAIError"], comps["AnthropicError"] = OPENAI_ERROR, ANTHROPIC_ERROR
    comps.update(SCHEMAS)
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            shape = "AnthropicError" if path.startswith("/v1/messages") else "OpenAIError"
            for status in STATUSES.get((path, method), ()):
                responses[str(status)] = {"description": WHY[status], "content": _json(shape)}
            if (path, method) in OK_BODIES:
                responses["200"] = {"description": responses.get("200", {}).get("description", "Successful Response"),
                                    "content": _json(OK_BODIES[(path, method)])}
            responses.update(OTHER.get((path, method), {}))
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
