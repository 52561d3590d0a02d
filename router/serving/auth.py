"""Access to /v1/*: when ROUTER_API_KEYS is set (comma-separated), a request must carry one of them.

An entry may carry a name, `alice:KEY`: client budgets (`scope: client, name: alice`) and the audit
line's `client_name` use it; the key itself is what the client sends.

OpenAI clients send `Authorization: Bearer KEY`; Anthropic clients send `x-api-key: KEY` (or a
bearer token). Comparison is constant-time. /health and the UI stay open.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping

from router.errors import RouterError

ENV_VAR = "ROUTER_API_KEYS"


class AuthError(RouterError):
    pass


_NAMED = re.compile(r"^([A-Za-z0-9_.-]{1,64}):(.+)$")


def parse_keys(raw: str) -> dict[str, str | None]:
    """ROUTER_API_KEYS -> {key: name or None}; `name:key` entries are named."""
    out: dict[str, str | None] = {}
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        m = _NAMED.match(entry)
        out[m.group(2).strip() if m else entry] = m.group(1) if m else None
    return out


def configured_keys(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "")
    return tuple(parse_keys(raw))


def key_names(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Named keys only: key -> name (never logged; the name is what budgets and the audit show)."""
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "")
    return {k: n for k, n in parse_keys(raw).items() if n}


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
