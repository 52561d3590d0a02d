"""The `httpx.AsyncClient` that upstream calls go through (proxy, playground, collect).

It is httpx's API over aiohttp's connection handling (the httpx-aiohttp transport). Measured on
our 2-core machine against the loopback stub: httpx's own transport (httpcore on anyio) spends
~2.7 ms of CPU per call, the aiohttp transport ~1.6 ms, and that difference was most of what the
proxy added beyond routing. `HttpxAiohttpClient` keeps httpx's handling of HTTP(S)_PROXY from the
environment, which an explicit `transport=` would switch off.
"""

from __future__ import annotations

import asyncio
from http.cookiejar import CookieJar, DefaultCookiePolicy

import aiohttp
import httpx

# What a failed upstream call can raise. The transport maps aiohttp's errors to httpx's; the rest
# are listed so that an unmapped one is still a failed attempt (retried, reported), not a crash.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.HTTPError, aiohttp.ClientError, asyncio.TimeoutError)


def error_text(exc: BaseException) -> str:
    """'Kind: message' for an attempt's report. The transport re-raises every aiohttp connection
    failure as httpx.ConnectTimeout (a refused connection too), so the kind comes from aiohttp's own
    error where there is one."""
    cause = exc.__cause__ if isinstance(exc.__cause__, aiohttp.ClientError) else exc
    if isinstance(cause, aiohttp.ClientConnectorError):  # refused, unreachable, DNS: never a timeout
        # aiohttp's own text ("Cannot connect to host h:p ssl:default [Connect call failed ('h', p)]")
        # repeats itself and names an SSL context even for plain http; say it once, in words.
        err = cause.os_error
        why = ("connection refused: nothing listens there" if isinstance(err, ConnectionRefusedError)
               else getattr(err, "strerror", None) or str(err) or "connection failed")
        return f"ConnectError: cannot connect to {cause.host}:{cause.port} ({why})"
    return f"{type(cause).__name__}: {exc}"


def upstream_client(max_connections: int = 100, timeout: float = 120.0, connect: float = 10.0) -> httpx.AsyncClient:
    from httpx_aiohttp import HttpxAiohttpClient

    # One client serves every request, so its cookie jar would carry an upstream's Set-Cookie from one
    # caller's request into the next caller's: a jar that accepts nothing keeps requests apart.
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return HttpxAiohttpClient(limits=httpx.Limits(max_connections=max_connections,
                                                  max_keepalive_connections=max_connections),
                              timeout=httpx.Timeout(timeout, connect=connect), cookies=no_cookies)
