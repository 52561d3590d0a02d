"""Who may use the playground and what its Send and Auto review may spend.

The playground follows the API's access rules (docs/hardening.md, "Hosting the playground"):

- `ROUTER_UI_AUTH=user:password[,user2:password2]`, or `ROUTER_API_KEYS` (any user name, one of
  the keys as password): the whole UI is behind Gradio's login, and so is every /gradio_api/*
  call (gradio_client must log in too). Nothing routes or spends before that.
- `ROUTER_UI_SEND=on|off`: whether Send and Auto review may call upstream models. Default: on,
  except on a Hugging Face Space (`SPACE_ID` set) without a login, where it is off: a public
  Space routes for anyone but never spends its owner's key.
- `ROUTER_UI_MAX_TOKENS` (default 1024) caps each answer, `ROUTER_UI_CONCURRENCY` (default 4)
  caps the sends running at once across every visitor.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from router.envvars import whole_number
from router.errors import InputError

AUTH_ENV = "ROUTER_UI_AUTH"
SEND_ENV = "ROUTER_UI_SEND"
MAX_TOKENS_ENV = "ROUTER_UI_MAX_TOKENS"
CONCURRENCY_ENV = "ROUTER_UI_CONCURRENCY"
DEFAULT_MAX_TOKENS = 1024
DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class UIAccess:
    login: Callable[[str, str], bool] | None  # Gradio's `auth`; None: no login
    send_enabled: bool
    send_off_reason: str = ""
    max_tokens: int = DEFAULT_MAX_TOKENS
    concurrency: int = DEFAULT_CONCURRENCY


def _eq(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _pairs(raw: str) -> list[tuple[str, str]]:
    pairs = []
    for item in (x.strip() for x in raw.split(",")):
        if not item:
            continue
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise InputError(f"{AUTH_ENV}: expected user:password pairs separated by commas, got an entry "
                             f"without 'user:password' (entry {len(pairs) + 1})")
        pairs.append((user, password))
    return pairs


def ui_access(environ: Mapping[str, str] | None = None, api_keys: tuple[str, ...] | None = None) -> UIAccess:
    env = os.environ if environ is None else environ
    if api_keys is None:
        from router.serving.auth import configured_keys

        api_keys = configured_keys(env)
    pairs = _pairs(env.get(AUTH_ENV, ""))
    login = None
    if pairs or api_keys:
        def login(username: str, password: str) -> bool:
            ok = any(_eq(username or "", u) & _eq(password or "", p) for u, p in pairs)
            return ok | any(_eq(password or "", k) for k in api_keys)
    send = env.get(SEND_ENV, "").strip().lower()
    if send not in ("", "on", "off"):
        raise InputError(f"{SEND_ENV}={send!r}: expected on or off")
    reason = ""
    if send == "off":
        enabled, reason = False, f"sending is switched off on this server ({SEND_ENV}=off)"
    elif send == "on" or not env.get("SPACE_ID") or login is not None:
        enabled = True
    else:
        enabled, reason = False, (f"sending is off on this public Space; its owner can put the UI behind a login "
                                  f"({AUTH_ENV}) or set {SEND_ENV}=on")
    return UIAccess(login=login, send_enabled=enabled, send_off_reason=reason,
                    max_tokens=whole_number(MAX_TOKENS_ENV, DEFAULT_MAX_TOKENS, 1, env),
                    concurrency=whole_number(CONCURRENCY_ENV, DEFAULT_CONCURRENCY, 1, env))
