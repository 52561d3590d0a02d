"""Calls to OpenAI-compatible upstreams (OpenRouter, vLLM, any /v1/chat/completions server).

One shared `httpx.AsyncClient` is passed in (created in the app's lifespan); a `Backend` holds
only settings, so it is safe to share. Retries with exponential backoff on 429, 5xx and
connection errors; other 4xx fail at once. A stream is retried only before its first chunk:
after that, replaying would duplicate text the client already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from router.errors import InputError, MissingKeyError, UpstreamError
from router.routing.costs import normalize_usage, sanitize_usage
from router.routing.pool import Slot
from router.safe_text import check_value
from router.upstream.adapt import adapt_messages
from router.upstream.client import TRANSPORT_ERRORS, error_text
from router.upstream.deadline import Deadline, DeadlineExceeded, retry_after_s

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 5.0


@dataclass
class Attempt:
    slot: str
    model: str
    status: int | None
    latency_ms: float
    error: str | None = None
    def __post_init__(self) -> None:
        # Wall clock when the attempt ended (it is built right then): traces place its span from this.
        # A plain attribute, not a field: it stays out of to_dict, the response and the audit line.
        self.ended_ns = time.time_ns()

    def to_dict(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict deep-copies, and this runs twice per proxied request.
        return {"slot": self.slot, "model": self.model, "status": self.status, "latency_ms": self.latency_ms,
                "error": self.error}


@dataclass
class ChatResult:
    text: str
    usage: dict[str, int]
    latency_ms: float
    status: int
    model: str
    finish_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    usage_reported: bool = True  # False: the upstream's body had no usage (usage is zeros until estimated)


def resolve_key(slot: Slot) -> str | None:
    """The slot's API key from the environment; local slots may run without one."""
    if slot.api_key_env:
        value = os.environ.get(slot.api_key_env, "").strip()
        if value:
            return value
    if slot.local:
        return None
    raise MissingKeyError(slot.name, slot.api_key_env or "<api_key_env is not set for this slot>")


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    except (ValueError, json.JSONDecodeError):
        pass
    return resp.text[:300] or resp.reason_phrase


class Backend:
    def __init__(self, client: httpx.AsyncClient, retries: int = 2, backoff: float = 0.25, timeout: float = 60.0):
        self.client = client
        self.retries = max(0, int(retries))
        self.backoff = float(backoff)
        self.timeout = float(timeout)

    # ---- request building --------------------------------------------------------
    @staticmethod
    def payload(slot: Slot, messages: list[dict], *, stream: bool = False, max_tokens: int | None = None,
                temperature: float | None = None, stop: list[str] | None = None,
                extra: dict | None = None) -> dict[str, Any]:
        msgs = adapt_messages(slot, messages)
        if slot.system_prompt:
            msgs = [{"role": "system", "content": slot.system_prompt}] + msgs
        body: dict[str, Any] = {**slot.extra_body, **(extra or {}), "model": slot.model, "messages": msgs}
        if max_tokens is not None:
            body["max_tokens"] = int(max_tokens)
        if temperature is not None:
            body["temperature"] = float(temperature)
        if stop:
            body["stop"] = list(stop)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    @staticmethod
    def headers(slot: Slot) -> dict[str, str]:
        key = resolve_key(slot)
        h = {"Content-Type": "application/json"}
        if key:
            h["Authorization"] = f"Bearer {key}"
        if "openrouter.ai" in slot.api_base:
            h["X-Title"] = "prefill-router"
        return h

    def _url(self, slot: Slot) -> str:
        return f"{slot.api_base}/chat/completions"

    async def _sleep(self, attempt: int, resp: httpx.Response | None, deadline: Deadline | None = None) -> None:
        delay = self.backoff * (2 ** attempt)
        asked = retry_after_s(resp.headers.get("retry-after")) if resp is not None else None
        if asked is not None:
            delay = min(MAX_RETRY_AFTER_S, asked)
        await asyncio.sleep(max(0.0, delay if deadline is None else min(delay, deadline.remaining())))

    # ---- non-streaming -----------------------------------------------------------
    async def chat(self, slot: Slot, messages: list[dict], *, max_tokens: int | None = None,
                   temperature: float | None = None, stop: list[str] | None = None,
                   extra: dict | None = None, deadline: Deadline | None = None) -> ChatResult:
        headers = self.headers(slot)  # raises MissingKeyError before any network use
        body = self.payload(slot, messages, max_tokens=max_tokens, temperature=temperature, stop=stop, extra=extra)
        content = encode_body(body)
        deadline = deadline or Deadline(None)
        attempts: list[Attempt] = []
        for i in range(self.retries + 1):
            budget = deadline.bound(self.timeout)
            if budget <= 0:
                break
            t0 = time.perf_counter()
            resp = None
            try:
                # The whole answer, not each socket read: a server trickling bytes cannot stretch it.
                async with asyncio.timeout(budget):
                    resp = await self.client.post(self._url(slot), content=content, headers=headers,
                                                  timeout=self.timeout + 1)  # the asyncio bound fires first
            except TimeoutError:
                attempts.append(Attempt(slot.name, slot.model, None, _ms(t0),
                                        f"Timeout: no complete answer within {budget:.3g} s"))
            except TRANSPORT_ERRORS as exc:
                attempts.append(Attempt(slot.name, slot.model, None, _ms(t0), error_text(exc)[:300]))
            else:
                if resp.status_code == 200:
                    result = self._parse(slot, resp, _ms(t0), attempts)
                    if result is not None:
                        return result
                    continue  # junk body: counted as an attempt, retried
                attempts.append(Attempt(slot.name, slot.model, resp.status_code, _ms(t0),
                                                _scrub(_error_text(resp), headers)))
                if resp.status_code not in RETRY_STATUSES:
                    break
            if i < self.retries:
                await self._sleep(i, resp, deadline)
        raise _gave_up(slot, attempts, deadline)

    def _parse(self, slot: Slot, resp: httpx.Response, latency_ms: float, attempts: list[Attempt]) -> ChatResult | None:
        try:
            data = resp.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            if not isinstance(text, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            attempts.append(Attempt(slot.name, slot.model, 200, latency_ms, f"invalid response body: {exc}"[:300]))
            return None
        if "usage" in data:
            data["usage"] = sanitize_usage(data["usage"])
        usage = normalize_usage(data.get("usage") or {})
        attempts.append(Attempt(slot.name, slot.model, 200, latency_ms))
        return ChatResult(
            text=text, usage=usage or {"prompt_tokens": 0, "completion_tokens": 0},
            latency_ms=latency_ms, status=200, model=str(data.get("model") or slot.model),
            finish_reason=choice.get("finish_reason"), raw=data, attempts=attempts, usage_reported=usage is not None)

    # ---- streaming ---------------------------------------------------------------
    async def stream(self, slot: Slot, messages: list[dict], *, max_tokens: int | None = None,
                     temperature: float | None = None, stop: list[str] | None = None, extra: dict | None = None,
                     attempts: list[Attempt] | None = None, deadline: Deadline | None = None) -> AsyncIterator[dict]:
        """Yield OpenAI chunk dicts; the upstream's usage arrives in a late chunk when it sends one.

        `attempts`, if given, is filled with one entry per try (for audit and failover reports).
        Each try's connect and first byte, and every silence between chunks, get `timeout` (cut to
        what is left of `deadline`); the deadline also bounds the stream as a whole.
        """
        headers = self.headers(slot)
        body = self.payload(slot, messages, stream=True, max_tokens=max_tokens, temperature=temperature,
                            stop=stop, extra=extra)
        content = encode_body(body)
        deadline = deadline or Deadline(None)
        attempts = attempts if attempts is not None else []
        for i in range(self.retries + 1):
            budget = deadline.bound(self.timeout)
            if budget <= 0:
                break
            t0 = time.perf_counter()
            started = False
            resp = None
            try:
                async with contextlib.AsyncExitStack() as stack:
                    async with asyncio.timeout(budget):
                        resp = await stack.enter_async_context(self.client.stream(
                            "POST", self._url(slot), content=content, headers=headers, timeout=self.timeout + 1))
                        if resp.status_code != 200:
                            await resp.aread()
                    if resp.status_code != 200:
                        attempts.append(Attempt(slot.name, slot.model, resp.status_code, _ms(t0),
                                                _scrub(_error_text(resp), headers)))
                        if resp.status_code not in RETRY_STATUSES:
                            break
                    else:
                        done, finished = False, False
                        chunks = _sse_chunks(resp)
                        while True:
                            # Bounded per chunk, never across the yield: the wait is the upstream's alone.
                            wait = deadline.bound(self.timeout)
                            try:
                                async with asyncio.timeout(wait):
                                    chunk = await anext(chunks)
                            except StopAsyncIteration:
                                break
                            except TimeoutError:
                                why = (f"deadline of {deadline.seconds:g} s reached" if deadline.expired
                                       else f"no chunk within {wait:.3g} s")
                                raise _Silent(f"Timeout: {why}") from None
                            if chunk is None:
                                done = True
                                break
                            started = True
                            finished = finished or _finish_reason(chunk) is not None
                            yield chunk
                        if done or finished:
                            attempts.append(Attempt(slot.name, slot.model, 200, _ms(t0)))
                            return
                        if started:
                            raise httpx.RemoteProtocolError("stream ended without a finish_reason or [DONE]")
                        attempts.append(Attempt(slot.name, slot.model, 200, _ms(t0), "empty stream"))
            except (_Silent, TimeoutError) as exc:
                text = str(exc) if isinstance(exc, _Silent) else f"Timeout: no answer within {budget:.3g} s"
                stream_attempt_failed(slot, resp, t0, text, started, attempts)
            except (*TRANSPORT_ERRORS, ValueError) as exc:
                stream_attempt_failed(slot, resp, t0, error_text(exc)[:300], started, attempts)
            if i < self.retries:
                await self._sleep(i, resp, deadline)
        raise _gave_up(slot, attempts, deadline)


class _Silent(Exception):
    """A stream went quiet past its timeout (or its deadline); an attempt's error, never raised out."""


def encode_body(body: dict[str, Any]) -> bytes:
    """The upstream request as strict JSON, checked once before any send: a lone surrogate or a
    non-finite number is the caller's error (400, audited), not a crash in the transport."""
    try:  # one encoder pass: strict JSON refuses non-finite numbers, UTF-8 refuses lone surrogates
        return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        check_value(body, "request")  # names the field, when it is one of those two
        raise InputError(f"the request cannot be sent upstream as JSON: {exc}") from None


async def _sse_chunks(resp: httpx.Response) -> AsyncIterator[dict | None]:
    """Parse `data:` lines; None marks [DONE]. A line that is not JSON raises ValueError."""
    async for line in resp.aiter_lines():
        line = line.strip()
        if not line or line.startswith(":") or not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            yield None
            return
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            raise ValueError("stream chunk is not a JSON object")
        if "usage" in chunk:  # a malformed count must not reach the client, the bill or the budgets
            chunk["usage"] = sanitize_usage(chunk["usage"])
        yield chunk


KEY_PART = 8  # an upstream echoing this many consecutive characters of our key leaks too much of it


def _scrub(text: str, headers: dict[str, str]) -> str:
    """An upstream that echoes our key back in an error must not get it into responses or the audit
    log, whole or in part ("...key ending in 0a1b2c3d4e5f"): every run of KEY_PART or more characters
    that occurs in the key is masked. Error texts are short, so the quadratic search is cheap."""
    auth = headers.get("Authorization", "")
    key = auth[7:] if auth.startswith("Bearer ") else ""
    if not key or len(key) < 4:
        return text
    text = text.replace(key, "[redacted]")
    if len(key) < KEY_PART:
        return text
    out, i = [], 0
    while i < len(text):
        n = KEY_PART
        if i + n <= len(text) and text[i:i + n] in key:
            while i + n < len(text) and text[i:i + n + 1] in key:
                n += 1
            out.append("[redacted]")
            i += n
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _gave_up(slot: Slot, attempts: list[Attempt], deadline: Deadline | None = None) -> UpstreamError:
    if deadline is not None and deadline.expired:
        return DeadlineExceeded(f"{slot.name} ({slot.model}): the request's deadline of {deadline.seconds:g} s "
                                f"ran out after {len(attempts)} attempt(s)", attempts=attempts)
    last = attempts[-1]
    return UpstreamError(f"{slot.name} ({slot.model}) failed after {len(attempts)} attempt(s): "
                         f"{last.status or 'connection error'} {last.error or ''}".strip(),
                         status=last.status, attempts=attempts)


def _finish_reason(chunk: dict) -> str | None:
    try:
        return chunk["choices"][0].get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None


def chunk_has_substance(chunk: dict) -> bool:
    """Text, a tool call, a finish reason or usage: anything beyond an empty role/keep-alive chunk."""
    if chunk.get("usage"):
        return True
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    for c in choices:
        if not isinstance(c, dict):
            return True
        delta = c.get("delta") if isinstance(c.get("delta"), dict) else {}
        if c.get("finish_reason") or delta.get("content") or delta.get("tool_calls") or delta.get("refusal") \
                or delta.get("reasoning") or delta.get("reasoning_content"):
            return True
    return False


def chunk_text(chunk: dict) -> str:
    try:
        return chunk["choices"][0]["delta"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1e3, 2)


def stream_attempt_failed(slot: Slot, resp: httpx.Response | None, t0: float, error: str, started: bool,
                          attempts: list[Attempt]) -> None:
    """Record a failed streaming try; once the client got chunks it cannot be retried elsewhere (502)."""
    attempts.append(Attempt(slot.name, slot.model, resp.status_code if resp is not None else None, _ms(t0), error))
    if started:
        raise UpstreamError(f"{slot.name} ({slot.model}): stream broke off midway: {error}",
                            status=502, attempts=attempts) from None
