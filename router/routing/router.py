"""Routing: P(correct) per slot -> the cheapest model within `tolerance` of the best.

The selection rule itself lives in `select.py`. `PrefillRouter` wires
pool + checkpoint + encoder together and returns a `RoutingResult`, the one object that
crosses layers (UI, proxy, audit log).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from router.errors import CheckpointError, ConfigError, InputError, UnknownModelError
from router.routing.pool import Pool, Slot, check_scorable, load_pool
from router.routing.select import Selection, check_tolerance, select  # noqa: F401 (re-exported)


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
    output_estimate: str = "training mean"  # where expected_output_tokens came from (see output_estimates)


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
    # What the pool's sensitivity rules and budgets did to this decision (router.serving.governance)
    governance: dict[str, Any] = field(default_factory=dict)

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


_BLAS = None


def blas_one_thread():
    """numpy's BLAS on one thread for the head: a routing-size matmul gains nothing from more, and
    OpenBLAS workers that spin after it slowed the next encoder forward (torch's OpenMP team on the
    same cores) from 23 to 90 ms on 2 cores with the kNN head. 0.015 ms per use."""
    global _BLAS
    if _BLAS is None:  # scanning the loaded libraries once per process; read-only afterwards
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


@dataclass(frozen=True)
class RouteArgs:
    """A request's validated tolerance and allowed-slot mask (pool order)."""

    tolerance: float
    allowed: list[bool]


def output_estimates(pool: Pool, checkpoint) -> tuple[np.ndarray, list[str]]:
    """Expected output tokens per slot and where each number comes from: the slot's own
    `expected_output_tokens` (+ `reasoning_tokens`) when the YAML sets them, else the mean output
    length of the label column in the training data (+ the slot's reasoning tokens, if set)."""
    out, src = [], []
    for s in pool.models:
        base = s.expected_output_tokens
        label = "config"
        if base is None:
            base = checkpoint.output_tokens(s.score_as)
            label = f"training mean of {s.trained_as} (borrowed)" if s.trained_as else "training mean"
        if s.reasoning_tokens:
            base, label = base + s.reasoning_tokens, label + " + reasoning (config)"
        out.append(float(base))
        src.append(label)
    return np.array(out), src


@dataclass
class Scores:
    """What the encoder + head said about one query: reusable for any tolerance or subset."""

    p: np.ndarray  # [n_slots of the pool]
    input_tokens: int
    encode_ms: float
    head_ms: float
    output_tokens: np.ndarray | None = None  # per-query expected output per slot (None: the pool's fixed estimate)


def pool_checkpoint(pool: Pool):
    """The checkpoint a pool names; an error says which YAML and field pointed there, not only the folder."""
    from router.model.head import load_checkpoint

    try:
        return load_checkpoint(pool.checkpoint_path)
    except CheckpointError as exc:
        if pool.source_path is None:
            raise
        where = ""
        if not Path(pool.checkpoint).expanduser().is_absolute() and not Path(pool.checkpoint_path).exists():
            where = (f" (a relative checkpoint is looked up next to the YAML, in {Path(pool.source_path).parent}, "
                     "then in the project root)")
        raise CheckpointError(f"{pool.source_path}: checkpoint: {pool.checkpoint!r} -> {exc}{where}") from None


class PrefillRouter:
    """Built once, read-only afterwards; safe to share across requests and threads."""

    def __init__(self, pool: Pool, checkpoint=None, encoder=None):
        self.pool = pool
        if not any(m.enabled for m in pool.models):  # collect may still ask disabled slots; routing cannot
            raise ConfigError(pool.source_path or pool.policy,
                              ["models: every slot has enabled: false, so nothing can be routed; enable at least one"])
        self.checkpoint = checkpoint or pool_checkpoint(pool)
        check_scorable(pool, self.checkpoint.slots)
        self._cols = [self.checkpoint.slots.index(s.score_as) for s in pool.models]
        if encoder is None:
            from router.model.encoder import get_encoder

            encoder = get_encoder(self.checkpoint.encoder_spec)
        from router.model.encoder_probe import check as check_encoder

        check_encoder(self.checkpoint, encoder)  # a head fed another model's features routes wrongly, silently
        self.encoder = encoder
        from router.model.embed_cache import cache_for

        self._cache = cache_for(encoder.spec)  # per process and encoder spec; hit rate in embed_cache.stats()
        self._out_tokens, self._out_source = output_estimates(pool, self.checkpoint)
        self._length, self._predicted = None, []
        if pool.output_length_data:
            from router.routing.output_length import length_model

            self._length = length_model(pool.output_length_data)
            # Per-query only for slots whose labels are their own and whose YAML sets no length.
            self._predicted = [i for i, s in enumerate(pool.models) if s.expected_output_tokens is None
                               and s.trained_as is None and s.score_as in self._length.labels]
        self._pred_source = [("predicted for this query (training data)"
                              + (" + reasoning (config)" if s.reasoning_tokens else ""))
                             if i in self._predicted else self._out_source[i] for i, s in enumerate(pool.models)]

    @classmethod
    def from_config(cls, path: str | Path | None = None) -> PrefillRouter:
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

    def score_texts(self, texts: Sequence[str], cached: bool = True) -> list[Scores]:
        """One encoder forward for already-validated texts; each Scores carries the batch's timings.
        `cached`: through this process's embedding cache (off: neither read nor filled nor counted)."""
        t0 = time.perf_counter()
        from router.model.embed_cache import encode_cached

        X, counts = encode_cached(self.encoder, texts, self._cache if cached else None)
        t1 = time.perf_counter()
        with blas_one_thread():
            P = self.checkpoint.head.predict(X)[:, self._cols].astype(float)
        outs = self.predicted_output_tokens(texts)
        t2 = time.perf_counter()
        return [Scores(P[i], int(counts[i]), (t1 - t0) * 1e3, (t2 - t1) * 1e3,
                       None if outs is None else outs[i]) for i in range(len(P))]

    def warm(self, text: str = "What is the capital of France?") -> None:
        """Route one text through every step, outside the embedding cache, so that a server's first
        real query does not pay the first-call costs: ONNX Runtime's buffers for a single row,
        threadpoolctl's scan of the loaded BLAS libraries, the first pass over the head's stored
        rows. Measured on 2 cores (default pool): the first route after load took 15-21 ms, its head
        6-9 ms; after this 11-13 ms and 1 ms."""
        self.decide_checked(self.score_texts([text], cached=False)[0], self.check_args())

    def predicted_output_tokens(self, texts: Sequence[str]) -> np.ndarray | None:
        """[texts, slots] expected output tokens, per query where the pool predicts them (else None)."""
        if not self._predicted:
            return None
        slots = self.pool.models
        pred = self._length.predict(texts, [slots[i].score_as for i in self._predicted])
        out = np.tile(self._out_tokens, (len(texts), 1))
        for k, i in enumerate(self._predicted):
            out[:, i] = pred[:, k] + (slots[i].reasoning_tokens or 0.0)
        return out

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

    def check_args(self, tolerance: Any = None, models: Sequence[str] | None = None) -> RouteArgs:
        """Validate a request's tolerance and model subset once, before any encoder work."""
        tol = self.pool.default_tolerance if tolerance is None else check_tolerance(tolerance)
        return RouteArgs(tol, self.allowed_mask(models))

    def expected_costs(self, input_tokens: int, output_tokens: Sequence[float] | None = None) -> np.ndarray:
        out = self._out_tokens if output_tokens is None else output_tokens
        return np.array([s.cost_usd(input_tokens, o) for s, o in zip(self.pool.models, out)])

    def decide(self, scores: Scores, tolerance: float | None = None,
               models: Sequence[str] | None = None) -> RoutingResult:
        """Apply the selection rule to already-computed scores (no encoder pass)."""
        return self.decide_checked(scores, self.check_args(tolerance, models))

    def decide_checked(self, scores: Scores, args: RouteArgs) -> RoutingResult:
        t0 = time.perf_counter()
        tol, allowed = args.tolerance, args.allowed
        costs = self.expected_costs(scores.input_tokens, scores.output_tokens)
        out_tokens = self._out_tokens if scores.output_tokens is None else scores.output_tokens
        sources = self._out_source if scores.output_tokens is None else self._pred_source
        sel = select(scores.p, costs, tol, allowed)
        slots = self.pool.models
        cand = set(sel.candidates)
        rows = [ModelScore(
            name=s.name, display_name=s.label, model=s.model, p=round(float(scores.p[i]), 6),
            expected_cost_usd=float(costs[i]), expected_input_tokens=scores.input_tokens,
            expected_output_tokens=round(float(out_tokens[i]), 1),
            cost_per_m_input_tokens=s.cost_per_m_input_tokens, cost_per_m_output_tokens=s.cost_per_m_output_tokens,
            allowed=allowed[i], candidate=i in cand, local=s.local,
            trained_as=s.trained_as, trained_as_reason=s.trained_as_reason,
            output_estimate=sources[i]) for i, s in enumerate(slots)]
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
        args = self.check_args(tolerance, models)  # before spending an encoder pass
        return self.decide_checked(self.score(query_or_messages), args)
