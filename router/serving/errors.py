"""The HTTP edge of the exception tree: every error becomes the calling API's own error shape.

OpenAI:    {"error": {"message", "type", "param", "code"}}
Anthropic: {"type": "error", "error": {"type", "message"}}    (for /v1/messages)

Statuses: bad input 400, bad or missing key 401, sensitive data refused 403, unknown model/policy or
path 404, body too large 413 (limits.py), budget cap 429 (with Retry-After), upstream rejected the
request 400, upstream down after failover 502, upstream key not configured or no local slot for a
local-only request 503, the request's deadline ran out 504, client hung up 499 (never seen by it).
Nothing leaves as a stack trace; unexpected errors are logged here and answered with a 500 body.
"""

from __future__ import annotations

import logging
from typing import Any

from router.errors import (
    CheckpointError,
    ConfigError,
    GovernanceError,
    InputError,
    MissingKeyError,
    RouterError,
    UnknownModelError,
    UpstreamError,
)
from router.serving.auth import AuthError
from router.serving.guard import ClientClosed

log = logging.getLogger("router.serving.app")

ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                   404: "not_found_error", 405: "invalid_request_error", 413: "request_too_large",
                   422: "invalid_request_error", 429: "rate_limit_error", 504: "timeout_error",
                   529: "overloaded_error"}


def is_anthropic(path: str) -> bool:
    return path.rstrip("/").startswith("/v1/messages")


def classify(exc: BaseException) -> tuple[int, str, str | None]:
    """(HTTP status, OpenAI error type, OpenAI error code) for a router error."""
    if isinstance(exc, AuthError):
        return 401, "authentication_error", "invalid_api_key"
    if isinstance(exc, GovernanceError):
        etype = {403: "permission_error", 429: "budget_exceeded"}.get(exc.status, "server_error")
        return exc.status, etype, exc.code
    if isinstance(exc, UnknownModelError):
        return 404, "invalid_request_error", "model_not_found"
    if isinstance(exc, InputError):
        return 400, "invalid_request_error", None
    if isinstance(exc, ClientClosed):
        return 499, "client_closed", "client_closed"
    if isinstance(exc, MissingKeyError):
        return 503, "upstream_error", "missing_upstream_key"
    if isinstance(exc, UpstreamError):
        status = exc.status if exc.status in (400, 502, 504) else 502
        if status == 504:
            return 504, "upstream_error", "deadline_exceeded"
        return status, "invalid_request_error" if status == 400 else "upstream_error", "upstream_failed"
    if isinstance(exc, (ConfigError, CheckpointError)):
        return 500, "server_error", "router_misconfigured"
    return 500, "server_error", None


def error_body(path: str, status: int, message: str, etype: str = "invalid_request_error",
               code: str | None = None, param: str | None = None, extra: dict[str, Any] | None = None) -> dict:
    if is_anthropic(path):
        atype = ANTHROPIC_TYPES.get(status, "api_error")
        body: dict[str, Any] = {"type": "error", "error": {"type": atype, "message": message}}
    else:
        body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
    if extra:
        body.update(extra)
    return body


def validation_message(errors: list[dict]) -> tuple[str, str | None]:
    """FastAPI/pydantic validation errors -> one message that says what to fix, and the first field."""
    parts, first = [], None
    for e in errors[:6]:
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        field = ".".join(loc)
        if e.get("type") == "json_invalid":
            parts.append(f"request body is not valid JSON ({e.get('ctx', {}).get('error', e.get('msg'))})")
        elif e.get("type") == "missing" and not loc:
            parts.append("request body is missing: send a JSON object")
        elif loc and loc[0] == "tolerance":
            parts.append("tolerance: must be a number in [0, 1] (0 = best model, 1 = cheapest)")
        elif not loc and e.get("type") in ("model_attributes_type", "dict_type"):
            parts.append("request body must be a JSON object")
        else:
            parts.append(f"{field or 'body'}: {e.get('msg')}")
        if e.get("type") != "json_invalid" and loc:
            first = first or loc[0]
    return "; ".join(dict.fromkeys(parts)), first


def install(app) -> None:
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def respond(request, status: int, message: str, etype: str, code: str | None = None,
                param: str | None = None, extra: dict | None = None, headers: dict | None = None):
        path = request.url.path
        h = dict(headers or {})
        if status >= 500:
            h.setdefault("x-should-retry", "false")  # failover already retried; SDK retries only add load
        return JSONResponse(error_body(path, status, message, etype, code, param, extra), status_code=status,
                            headers=h)

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc: RequestValidationError):
        message, param = validation_message(list(exc.errors()))
        return respond(request, 400, message, "invalid_request_error", None, param)

    @app.exception_handler(RouterError)
    async def _router_error(request, exc: RouterError):
        status, etype, code = classify(exc)
        if status >= 500 and not isinstance(exc, UpstreamError):
            log.error("router error on %s: %s", request.url.path, exc)
        headers = dict(exc.headers or {})
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        extra = {"router": exc.router} if exc.router else None
        if isinstance(exc, GovernanceError) and exc.governance:
            extra = {**(extra or {}), "governance": exc.governance}
        param = "model" if status == 404 else None
        return respond(request, status, str(exc), etype, code, param, extra, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc: StarletteHTTPException):
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        elif exc.status_code == 400 and message == "There was an error parsing the body":
            # FastAPI's words for a body json.loads could not even decode (bytes that are not UTF-8)
            message = "request body could not be read as JSON: send UTF-8 encoded JSON"
        return respond(request, exc.status_code, message, "invalid_request_error", None, None, None,
                       getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return respond(request, 500, f"internal error ({type(exc).__name__}); see the server log",
                       "server_error")
