"""Calls to upstreams that speak OpenAI's Responses API (`upstream_api: responses` on a slot):
POST {api_base}/responses, the body passed through with the slot's destination model.

Same rules as the chat Backend: the key comes from the environment, 429/5xx/connection errors are
retried with backoff, other 4xx fail at once, a stream is retried only before its first event, every
try is an `Attempt`, and the per-try timeout and the request's deadline bound the whole answer (for a
stream: the first byte and each silence between events). Events are yielded as (event name, data dict) pairs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from router.routing.pool import Slot
from router.upstream.backends import (
    RETRY_STATUSES,
    Attempt,
    Backend,
    _error_text,
    _gave_up,
    _ms,
    _scrub,
    _Silent,
    encode_body,
    stream_attempt_failed,
)
from router.upstream.client import TRANSPORT_ERRORS, error_text
from router.upstream.deadline import Deadline


def payload(slot: Slot, body: dict, *, stream: bool) -> dict[str, Any]:
    out = {**slot.extra_body, **body, "model": slot.model}
    if slot.system_prompt:
        out["instructions"] = "\n\n".join(x for x in (slot.system_prompt, body.get("instructions")) if x)
    out["stream"] = stream
    return out


async def create(backend: Backend, slot: Slot, body: dict,
                 deadline: Deadline | None = None) -> tuple[dict, list[Attempt]]:
    headers = backend.headers(slot)
    content = encode_body(payload(slot, body, stream=False))
    deadline = deadline or Deadline(None)
    attempts: list[Attempt] = []
    for i in range(backend.retries + 1):
        budget = deadline.bound(backend.timeout)
        if budget <= 0:
            break
        t0 = time.perf_counter()
        resp = None
        try:
            # The whole answer, as for chat: a server trickling bytes cannot stretch a try.
            async with asyncio.timeout(budget):
                resp = await backend.client.post(f"{slot.api_base}/responses", content=content, headers=headers,
                                                 timeout=backend.timeout + 1)  # the asyncio bound fires first
        except TimeoutError:
            attempts.append(Attempt(slot.name, slot.model, None, _ms(t0),
                                    f"Timeout: no complete answer within {budget:.3g} s"))
        except TRANSPORT_ERRORS as exc:
            attempts.append(Attempt(slot.name, slot.model, None, _ms(t0), error_text(exc)[:300]))
        else:
            if resp.status_code == 200:
                try:
                    out = resp.json()
                    if not isinstance(out, dict) or "output" not in out:
                        raise ValueError("no `output` in the body")
                except ValueError as exc:
                    attempts.append(Attempt(slot.name, slot.model, 200, _ms(t0), f"invalid response body: {exc}"))
                else:
                    attempts.append(Attempt(slot.name, slot.model, 200, _ms(t0)))
                    return out, attempts
            else:
                attempts.append(Attempt(slot.name, slot.model, resp.status_code, _ms(t0),
                                        _scrub(_error_text(resp), headers)))
                if resp.status_code not in RETRY_STATUSES:
                    break
        if i < backend.retries:
            await backend._sleep(i, resp, deadline)
    raise _gave_up(slot, attempts, deadline)


async def stream(backend: Backend, slot: Slot, body: dict, attempts: list[Attempt],
                 deadline: Deadline | None = None) -> AsyncIterator[tuple[str, dict]]:
    """Each try's connect and first byte, and every silence between events, get `timeout` (cut to
    what is left of `deadline`), as for chat streams."""
    headers = backend.headers(slot)
    content = encode_body(payload(slot, body, stream=True))
    deadline = deadline or Deadline(None)
    for i in range(backend.retries + 1):
        budget = deadline.bound(backend.timeout)
        if budget <= 0:
            break
        t0 = time.perf_counter()
        started = False
        resp = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                async with asyncio.timeout(budget):
                    resp = await stack.enter_async_context(backend.client.stream(
                        "POST", f"{slot.api_base}/responses", content=content, headers=headers,
                        timeout=backend.timeout + 1))
                    if resp.status_code != 200:
                        await resp.aread()
                if resp.status_code != 200:
                    attempts.append(Attempt(slot.name, slot.model, resp.status_code, _ms(t0),
                                            _scrub(_error_text(resp), headers)))
                    if resp.status_code not in RETRY_STATUSES:
                        break
                else:
                    ended = False
                    events = _events(resp)
                    while True:
                        wait = deadline.bound(backend.timeout)  # the upstream's wait only, never across the yield
                        try:
                            async with asyncio.timeout(wait):
                                kind, event = await anext(events)
                        except StopAsyncIteration:
                            break
                        except TimeoutError:
                            why = (f"deadline of {deadline.seconds:g} s reached" if deadline.expired
                                   else f"no event within {wait:.3g} s")
                            raise _Silent(f"Timeout: {why}") from None
                        started = True
                        ended = ended or kind in ("response.completed", "response.incomplete", "response.failed")
                        yield kind, event
                    if ended:
                        attempts.append(Attempt(slot.name, slot.model, 200, _ms(t0)))
                        return
                    raise ValueError("stream ended without response.completed")
        except (_Silent, TimeoutError) as exc:
            text = str(exc) if isinstance(exc, _Silent) else f"Timeout: no answer within {budget:.3g} s"
            stream_attempt_failed(slot, resp, t0, text, started, attempts)
        except (*TRANSPORT_ERRORS, ValueError) as exc:
            stream_attempt_failed(slot, resp, t0, error_text(exc)[:300], started, attempts)
        if i < backend.retries:
            await backend._sleep(i, resp, deadline)
    raise _gave_up(slot, attempts, deadline)


async def _events(resp) -> AsyncIterator[tuple[str, dict]]:
    kind = None
    async for line in resp.aiter_lines():
        line = line.strip()
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
            if data == "[DONE]":
                return
            event = json.loads(data)
            if not isinstance(event, dict):
                raise ValueError("stream event is not a JSON object")
            yield (kind or str(event.get("type", ""))), event
            kind = None
