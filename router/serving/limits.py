"""Request-body size limit for the HTTP API (`--max-body`, $ROUTER_MAX_BODY_BYTES; default 4 MB).

A pure ASGI middleware, so that a too-large body is refused before anything parses it: a declared
Content-Length over the limit is answered at once (nothing is read), a chunked body is counted as
it arrives and refused as soon as it passes the limit. The 413 is in the calling API's error shape.
Only /v1/* is limited; the Gradio UI mounted beside it has its own upload limit.
"""

from __future__ import annotations

import json
import os

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
ENV_VAR = "ROUTER_MAX_BODY_BYTES"


def configured_max_body(value: int | None = None) -> int:
    if value is not None:
        return int(value)
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_MAX_BODY_BYTES
    try:
        n = int(float(raw))
    except ValueError:
        from router.errors import InputError

        raise InputError(f"{ENV_VAR}={raw!r}: expected a number of bytes, e.g. 4194304") from None
    return n


class BodyLimit:
    def __init__(self, app, max_bytes: int, prefix: str = "/v1/"):
        self.app = app
        self.max_bytes = int(max_bytes)
        self.prefix = prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix) or self.max_bytes <= 0:
            return await self.app(scope, receive, send)
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            return await self._refuse(scope, send, declared)
        # Read the body here (the app would read all of it anyway), counting, then replay it.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body: nobody to answer
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                return await self._refuse(scope, send, None)
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # afterwards: the client's disconnect, for whoever listens

        return await self.app(scope, replay, send)

    async def _refuse(self, scope, send, declared: int | None) -> None:
        from router.serving.errors import error_body

        size = f"{declared} bytes" if declared is not None else f"more than {self.max_bytes} bytes"
        message = (f"request body too large ({size}); this router accepts at most {self.max_bytes} bytes "
                   f"(set by --max-body / {ENV_VAR})")
        body = json.dumps(error_body(scope["path"], 413, message, "invalid_request_error",
                                     "request_too_large")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope) -> int | None:
    for k, v in scope.get("headers") or ():
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None
