"""Routing: P(correct) per slot -> the cheapest model within `tolerance` of the best.

`select` is the exact selection rule of DESIGN.md, pure and torch-free. `PrefillRouter` wires
pool + checkpoint + encoder together and returns a `RoutingResult`, the one object that
crosses layers (UI, proxy, audit log).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from router.errors import CheckpointError, ConfigError, InputError, UnknownModelError
from router.routing.pool import Pool, Slot, check_scorable, load_pool


@dataclass(frozen=True)
class Selection:
    chosen: int
    best: int
    p_max: float
    threshold: float
    candidates: tuple[int, ...]


def check_tolerance(tolerance: Any) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
        raise InputError(f"tolerance must be a number in [0, 1], got {tolerance!r}")
    t = float(tolerance)
    if math.isnan(t) or not 0.0 <= t <= 1.0:
        raise InputError(f"tolerance must be in [0, 1] (0 = best model, 1 = cheapest), got {tolerance!r}")
    return t


def select(p: Sequence[float], expected_cost: Sequence[float], tolerance: float,
           allowed: Sequence[bool] | None = None) -> Selection:
    """p_max over allowed; candidates have P >= p_max - tolerance; cheapest wins, ties by order."""
    tolerance = check_tolerance(tolerance)
    n = len(p)
    if len(expected_cost) != n:
        raise InputError(f"select: {n} probabilities but {len(expected_cost)} costs")
    allowed = [True] * n if allowed is None else list(allowed)
    idx = [i for i in range(n) if allowed[i]]
    if not idx:
        raise InputError("no model is enabled: enable at least one model of the pool")
    best = min(idx, key=lambda i: (-p[i], i))
    p_max = float(p[best])
    threshold = p_max - tolerance
    # A hair of slack so that a P equal to the threshold in decimal is not lost to float rounding.
    cands = tuple(i for i in idx if p[i] >= threshold - 1e-12)
    chosen = min(cands, key=lambda i: (expected_cost[i], i))
    return Selection(chosen=chosen, best=best, p_max=p_max, threshold=threshold, candidates=cands)


@dataclass
class ModelScore:
    name: str
    display_name: str
    model: str
    p: float
    expected_cost_usd: float
    expected_input_tokens: int
    expected_output_tokens: float
    cost_per_m_input_tokens: float
    cost_per_m_output_tokens: float
    allowed: bool
    candidate: bool
    local: bool
    trained_as: str | None
    trained_as_reason: str | None


@dataclass
class RoutingResult:
    policy: str
    tolerance: float
    chosen: str
    chosen_model: str
    best: str
    p_max: float
    threshold: float
    candidates: list[str]
    models: list[ModelScore]
    input_tokens: int
    expected_cost_usd: float
    baseline: str
    baseline_expected_cost_usd: float
    timings_ms: dict[str, float] = field(default_factory=dict)
    checkpoint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def score(self, name: str) -> ModelScore:
        for m in self.models:
            if m.name == name:
                return m
        raise UnknownModelError(f"no model {name!r} in this result")

    @property
    def probabilities(self) -> dict[str, float]:
        return {m.name: m.p for m in self.models}


@dataclass
class Scores:
    """What the encoder + head said about one query: reusable for any tolerance or subset."""

    p: np.ndarray  # [n_slots of the pool]
    input_tokens: int
    encode_ms: float
    head_ms: float


class PrefillRouter:
    """Built once, read-only afterwards; safe to share across requests and threads."""

    def __init__(self, pool: Pool, checkpoint=None, encoder=None):
        from router.model.head import load_checkpoint

        self.pool = pool
        if not any(m.enabled for m in pool.models):  # collect may still ask disabled slots; routing cannot
            raise ConfigError(pool.source_path or pool.policy,
                              ["models: every slot has enabled: false, so nothing can be routed; enable at least one"])
        try:
            self.checkpoint = checkpoint or load_checkpoint(pool.checkpoint_path)
        except CheckpointError as exc:  # say which YAML and field pointed there, not only the folder
            if pool.source_path is None:
                raise
            raise CheckpointError(f"{pool.source_path}: checkpoint: {pool.checkpoint!r} -> {exc}") from None
        check_scorable(pool, self.checkpoint.slots)
        self._cols = [self.checkpoint.slots.index(s.score_as) for s in pool.models]
        if encoder is None:
            from router.model.encoder import get_encoder

            encoder = get_encoder(self.checkpoint.encoder_spec)
        self.encoder = encoder
        self._out_tokens = np.array([self.checkpoint.output_tokens(s.score_as) for s in pool.models])

    @classmethod
    def from_config(cls, path: str | Path | None = None) -> "PrefillRouter":
        return cls(load_pool(path))

    @property
    def slots(self) -> list[Slot]:
        return list(self.pool.models)

    # ---- scoring -------------------------------------------------------------------
    @staticmethod
    def query_text(query_or_messages: Any) -> str:
        from router.model.encoder import messages_to_text

        from router.safe_text import check_text

        if isinstance(query_or_messages, str):
            if not query_or_messages.strip():
                raise InputError("query is empty: send some text to route")
            return check_text(query_or_messages)
        if isinstance(query_or_messages, (list, tuple)):
            return check_text(messages_to_text(query_or_messages), "messages")
        raise InputError(f"query must be a string or a list of chat messages, got {type(query_or_messages).__name__}")

    def score(self, query_or_messages: Any) -> Scores:
        return self.score_texts([self.query_text(query_or_messages)])[0]

    def score_texts(self, texts: Sequence[str]) -> list[Scores]:
        """One encoder forward for already-validated texts; each Scores carries the batch's timings."""
        t0 = time.perf_counter()
        ids, counts = self.encoder.tokenize(list(texts))
        X = self.encoder.encode_ids(ids)
        t1 = time.perf_counter()
        P = self.checkpoint.head.predict(X)[:, self._cols].astype(float)
        t2 = time.perf_counter()
        return [Scores(P[i], int(counts[i]), (t1 - t0) * 1e3, (t2 - t1) * 1e3) for i in range(len(P))]

    def score_batch(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        X = self.encoder.features(list(texts), batch_size=batch_size, progress=progress)
        return self.checkpoint.head.predict(X)[:, self._cols] if len(X) else np.zeros((0, len(self._cols)))

    # ---- selection -----------------------------------------------------------------
    def allowed_mask(self, models: Sequence[str] | None) -> list[bool]:
        names = self.pool.names
        if models is None:
            return [s.enabled for s in self.pool.models]
        if isinstance(models, str) or not all(isinstance(m, str) for m in models):
            raise InputError("models must be a list of slot names")
        unknown = [m for m in models if m not in names]
        if unknown:
            raise UnknownModelError(f"unknown model(s) {unknown} for pool {self.pool.policy!r}; "
                                    f"known slots: {', '.join(names)}")
        if not models:
            raise InputError("models is empty: allow at least one slot")
        wanted = set(models)
        return [n in wanted for n in names]

    def expected_costs(self, input_tokens: int) -> np.ndarray:
        return np.array([s.cost_usd(input_tokens, o) for s, o in zip(self.pool.models, self._out_tokens)])

    def decide(self, scores: Scores, tolerance: float | None = None,
               models: Sequence[str] | None = None) -> RoutingResult:
        """Apply the selection rule to already-computed scores (no encoder pass)."""
        t0 = time.perf_counter()
        tol = self.pool.default_tolerance if tolerance is None else check_tolerance(tolerance)
        allowed = self.allowed_mask(models)
        costs = self.expected_costs(scores.input_tokens)
        sel = select(scores.p, costs, tol, allowed)
        slots = self.pool.models
        cand = set(sel.candidates)
        rows = [ModelScore(
            name=s.name, display_name=s.label, model=s.model, p=round(float(scores.p[i]), 6),
            expected_cost_usd=float(costs[i]), expected_input_tokens=scores.input_tokens,
            expected_output_tokens=round(float(self._out_tokens[i]), 1),
            cost_per_m_input_tokens=s.cost_per_m_input_tokens, cost_per_m_output_tokens=s.cost_per_m_output_tokens,
            allowed=allowed[i], candidate=i in cand, local=s.local,
            trained_as=s.trained_as, trained_as_reason=s.trained_as_reason) for i, s in enumerate(slots)]
        base = self.pool.baseline_slot
        bi = self.pool.names.index(base.name)
        select_ms = (time.perf_counter() - t0) * 1e3
        return RoutingResult(
            policy=self.pool.policy, tolerance=tol, chosen=slots[sel.chosen].name,
            chosen_model=slots[sel.chosen].model, best=slots[sel.best].name, p_max=round(sel.p_max, 6),
            threshold=round(sel.threshold, 6), candidates=[slots[i].name for i in sel.candidates], models=rows,
            input_tokens=scores.input_tokens, expected_cost_usd=float(costs[sel.chosen]), baseline=base.name,
            baseline_expected_cost_usd=float(costs[bi]),
            timings_ms={"encode_ms": round(scores.encode_ms, 3), "head_ms": round(scores.head_ms, 3),
                        "select_ms": round(select_ms, 3),
                        "total_ms": round(scores.encode_ms + scores.head_ms + select_ms, 3)},
            checkpoint=str(self.checkpoint.path))

    def route(self, query_or_messages: Any, tolerance: float | None = None,
              models: Sequence[str] | None = None) -> RoutingResult:
        # Validate the cheap arguments before spending an encoder pass.
        if tolerance is not None:
            check_tolerance(tolerance)
        self.allowed_mask(models)
        return self.decide(self.score(query_or_messages), tolerance, models)
