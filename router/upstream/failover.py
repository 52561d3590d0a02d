"""Failover: when the chosen model fails (after the backend's retries), try the next one.

Order: the chosen model, then the cheapest other candidate (P >= threshold), then the best model.
A pinned request has one model and no failover: the client asked for that model. Every try of
every model is kept as an `Attempt` (slot, status, latency, error) for the response and the audit.
A stream can fail over only before its first chunk; after that the client already has text.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from router.errors import MissingKeyError, UpstreamError
from router.routing.pool import Pool, Slot
from router.routing.router import RoutingResult
from router.upstream.backends import Attempt, Backend, ChatResult, chunk_has_substance
from router.upstream.deadline import Deadline, DeadlineExceeded

CLIENT_ERROR_STATUSES = {400, 413, 422}
BeforeTry = Callable[[Slot], None]


class SlotSkipped(UpstreamError):
    """Raised by `before_try` for a slot that must not be called now (a budget cap reached since
    routing): the slot is recorded as not tried, with this message, and the plan goes on."""


def ready_to_try(slot: Slot, before_try: BeforeTry | None, attempts: list[Attempt],
                 errors: list[UpstreamError]) -> bool:
    """Run `before_try(slot)`; False (the skip recorded in `attempts` and `errors`) for a skipped slot."""
    if before_try is None:
        return True
    try:
        before_try(slot)
    except SlotSkipped as exc:
        attempts.append(Attempt(slot.name, slot.model, None, 0.0, f"not tried: {exc}"))
        errors.append(exc)
        return False
    return True


def failover_plan(result: RoutingResult, first: str, pool: Pool) -> list[Slot]:
    order = [first]
    names = pool.names
    others = sorted((m for m in result.models if m.candidate and m.name != first),
                    key=lambda m: (m.expected_cost_usd, names.index(m.name)))
    if others:
        order.append(others[0].name)
    if result.best not in order:
        order.append(result.best)
    return [pool.slot(n) for n in order]


def _missing_key_attempt(slot: Slot, exc: MissingKeyError) -> Attempt:
    return Attempt(slot.name, slot.model, None, 0.0, f"missing API key: set {exc.env_var}")


def final_error(errors: list[UpstreamError], attempts: list[Attempt],
                deadline: Deadline | None = None) -> UpstreamError:
    """One error for the client once every model in the plan has failed (or the deadline ran out)."""
    if deadline is not None and deadline.expired:
        tried = ", ".join(dict.fromkeys(f"{a.slot}" for a in attempts)) or "no model"
        return DeadlineExceeded(f"the request's deadline of {deadline.seconds:g} s ran out ({tried} tried, "
                                f"{len(attempts)} attempt(s))", attempts=attempts)
    if errors and all(isinstance(e, MissingKeyError) for e in errors):
        first = errors[0]
        err = MissingKeyError(first.slot, first.env_var)
        err.attempts = attempts
        return err
    statuses = [a.status for a in attempts if a.status is not None]
    tried = ", ".join(dict.fromkeys(f"{a.slot}" for a in attempts))
    last = attempts[-1] if attempts else None
    detail = f"{last.status or 'connection error'} {last.error or ''}".strip() if last else "no attempt"
    if statuses and all(s in CLIENT_ERROR_STATUSES for s in statuses):
        return UpstreamError(f"the upstream rejected the request ({tried}): {detail}", status=400, attempts=attempts)
    return UpstreamError(f"every model tried failed ({tried}); last error: {detail}", status=502, attempts=attempts)


async def chat_with_failover(backend: Backend, plan: list[Slot], messages: list[dict],
                             deadline: Deadline | None = None, before_try: BeforeTry | None = None,
                             **params: Any) -> tuple[Slot, ChatResult, list[Attempt]]:
    """`before_try(slot)`: called before each slot is tried (the proxy moves its budget hold, and
    raises SlotSkipped for a slot a cap now forbids)."""
    attempts: list[Attempt] = []
    errors: list[UpstreamError] = []
    for slot in plan:
        if deadline is not None and deadline.expired:
            break
        if not ready_to_try(slot, before_try, attempts, errors):
            continue
        try:
            res = await backend.chat(slot, messages, deadline=deadline, **params)
        except MissingKeyError as exc:
            attempts.append(_missing_key_attempt(slot, exc))
            errors.append(exc)
        except UpstreamError as exc:
            attempts.extend(exc.attempts)
            errors.append(exc)
        else:
            attempts.extend(res.attempts)
            return slot, res, attempts
    raise final_error(errors, attempts, deadline)


@dataclass
class OpenStream:
    """An upstream stream that has produced its first chunk (so the model is settled)."""

    slot: Slot
    first: dict | None
    chunks: AsyncIterator[dict]
    attempts: list[Attempt]
    started: float = field(default_factory=time.perf_counter)
    lead: list[dict] = field(default_factory=list)  # chunks before `first` with nothing in them (the role chunk)

    async def rest(self) -> AsyncIterator[dict]:
        for chunk in self.lead:
            yield chunk
        if self.first is not None:
            yield self.first
        async for chunk in self.chunks:
            yield chunk

    async def aclose(self) -> None:
        close = getattr(self.chunks, "aclose", None)
        if close is not None:
            await close()


Opener = Callable[[Slot, list[Attempt]], AsyncIterator[Any] | None]


async def open_stream_with_failover(backend: Backend, plan: list[Slot], messages: list[dict],
                                    deadline: Deadline | None = None, opener: Opener | None = None,
                                    before_try: BeforeTry | None = None, **params: Any) -> OpenStream:
    """`opener(slot, attempts)`: the stream of a slot that speaks something else than chat completions
    (it returns None for the others, which get `backend.stream`); its first item settles the model."""
    attempts: list[Attempt] = []
    errors: list[UpstreamError] = []
    for slot in plan:
        if deadline is not None and deadline.expired:
            break
        if not ready_to_try(slot, before_try, attempts, errors):
            continue
        # The backend appends every try to `attempts`, including the closing one of a stream that
        # is still running when this returns.
        agen = opener(slot, attempts) if opener is not None else None
        own = agen is not None
        if agen is None:
            agen = backend.stream(slot, messages, attempts=attempts, deadline=deadline, **params)
        lead: list[dict] = []
        try:
            # The model is settled by the first chunk with something in it: a stream that dies
            # after its role chunk has given the client nothing yet, so it can still fail over.
            while True:
                first = await agen.__anext__()
                if own or chunk_has_substance(first):
                    break
                lead.append(first)
        except StopAsyncIteration:
            return OpenStream(slot, None, agen, attempts, lead=lead)
        except MissingKeyError as exc:
            attempts.append(_missing_key_attempt(slot, exc))
            errors.append(exc)
        except UpstreamError as exc:
            errors.append(exc)
        else:
            return OpenStream(slot, first, agen, attempts, lead=lead)
    raise final_error(errors, attempts, deadline)
