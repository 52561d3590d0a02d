"""The one hook the pipeline calls when a proxied request ends: metrics and traces from its record.

Telemetry must never break or slow a request: a failure here is logged (once per kind) and
swallowed, and the trace export itself runs on the OpenTelemetry SDK's own thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)


def enabled(state) -> bool:
    return state.metrics is not None or state.tracing is not None


def request_done(state, d, record: Mapping[str, Any], attempts: Iterable[Any], ended: float) -> None:
    attempts = list(attempts)
    if state.metrics is not None:
        try:
            state.metrics.request_done(record, d.result.timings_ms if d.result is not None else None, attempts)
        except Exception:  # noqa: BLE001 - see the module docstring
            log.exception("metrics: could not record request %s", d.request_id)
    if state.tracing is not None:
        try:
            state.tracing.request_done(d, record, attempts, ended)
        except Exception:  # noqa: BLE001
            log.exception("tracing: could not build the spans of request %s", d.request_id)
