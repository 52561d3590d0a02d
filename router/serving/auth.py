"""Access to /v1/*: when ROUTER_API_KEYS is set (comma-separated), a request must carry one of them.

OpenAI clients send `Authorization: Bearer KEY`; Anthropic clients send `x-api-key: KEY` (or a
bearer token). Comparison is constant-time. /health and the UI stay open.
"""

from __future__ import annotations

import hmac
import os
from typing import Mapping

from router.errors import RouterError

ENV_VAR = "ROUTER_API_KEYS"


class AuthError(RouterError):
    pass


def configured_keys(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "")
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def request_token(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = (headers.get("x-api-key") or "").strip()
    return key or None


def check_access(headers: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    """The caller's token (None when access is open); AuthError when keys are set and it is not one."""
    token = request_token(headers)
    if not keys:
        return token
    if token is None:
        raise AuthError(f"missing API key: send 'Authorization: Bearer <key>' (or 'x-api-key: <key>') "
                        f"with one of the keys in {ENV_VAR}")
    if not any(hmac.compare_digest(token.encode(), k.encode()) for k in keys):
        raise AuthError("invalid API key: it is not one of the keys this router accepts")
    return token
