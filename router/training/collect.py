"""Collect labels: ask every enabled slot of a pool every question, judge the answers, append rows.

Output is the long label format (JSONL), one row per (question, model), written and flushed as
each call completes, so an interrupted run loses at most the calls in flight; rerunning skips
the (id, model) pairs already in the file. Calls run with bounded concurrency per endpoint
(api_base). A budget cap (USD) stops new calls once spent + reserved estimates would pass it; a call
that does not fit waits for the calls in flight to settle at their real cost. Estimates use each
slot's measured answer lengths, or --max-tokens (the closest to a hard bound: input tokens are
estimated, and an LLM judge's calls are counted when they return).

Each row: id, question, model (the slot name: what a retrained checkpoint learns), correct
(None = unknown), cost_usd, input_tokens, output_tokens, latency_ms, response, destination,
finish_reason, judge, judge_note, and reference/task/split when the question had them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.errors import InputError, MissingKeyError, UpstreamError
from router.files import atomic_write
from router.jsonl import iter_objects
from router.routing.pool import Pool, Slot
from router.training.data import approx_tokens, question_id
from router.training.judges import Judge, Verdict
from router.training.questions import Question as Item
from router.training.questions import read_questions as read_questions_file
from router.upstream.backends import Backend, resolve_key

DEFAULT_OUTPUT_GUESS = 256  # output tokens assumed for a slot's budget reservation before it has answered


def read_questions(path: str | Path) -> list[Item]:
    """The questions to ask, each once (router/training/questions.py reads every format)."""
    return read_questions_file(path, unique=True)


def read_collected(path: Path) -> list[dict]:
    """Rows already in a label file (read-only). A torn last line (a run killed mid-write) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    raw = raw[: raw.rfind(b"\n") + 1]  # '' when no line is complete
    rows = []
    for n, row in iter_objects(raw.decode("utf-8").splitlines(), path, "fix or move the file"):
        if "model" not in row:
            raise InputError(f"{path}: line {n}: not a label row (needs id/question, model, correct)")
        rows.append(row)
    return rows


def cut_torn_tail(path: Path) -> None:
    """Drop an incomplete last line left by a killed run, so appended rows start on a line of their own."""
    from router.audit.tail import repair_torn_tail

    repair_torn_tail(path, keep=False)


def row_key(row: dict) -> tuple[str, str]:
    return str(row.get("id") or question_id(row.get("question", ""))), str(row["model"])


@dataclass
class CollectConfig:
    concurrency: int = 4  # calls in flight per endpoint (api_base)
    max_usd: float | None = None  # this run's spending cap; None = no cap
    max_tokens: int | None = None  # per answer; also what the budget reserves per call
    temperature: float | None = None  # None: not sent (the endpoint's default; some reject 0)
    system: str | None = None  # extra system message before each question
    retries: int = 2
    backoff: float = 0.5
    timeout: float = 120.0
    limit: int | None = None  # stop after this many calls (smoke runs)
    models: tuple[str, ...] | None = None  # slots to ask (disabled ones too); None = every enabled slot

    def __post_init__(self):
        if self.concurrency < 1:
            raise InputError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_usd is not None and self.max_usd < 0:
            raise InputError(f"max_usd must be >= 0, got {self.max_usd}")


@dataclass
class CollectReport:
    pending: int = 0  # calls this run set out to make
    skipped: int = 0  # (question, model) pairs already in the file
    written: int = 0
    spent_usd: float = 0.0
    judge_usd: float = 0.0
    stopped_by_budget: bool = False
    over_budget: int = 0  # calls not made because their estimate no longer fitted under the cap
    stopped_by_limit: bool = False
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    failed_by_slot: dict[str, int] = field(default_factory=dict)
    judge_failed: int = 0  # rows whose label is unknown because the judge could not grade them
    rejudged: int = 0  # rows of an earlier run whose failed verdict this run graded again

    @property
    def failed(self) -> int:
        return sum(self.failed_by_slot.values())

    @property
    def calls_per_s(self) -> float:
        return (self.written + self.failed) / self.seconds if self.seconds > 0 else 0.0


class Budget:
    """Spend tracking with reservations, so concurrent calls cannot jointly overshoot the cap."""

    def __init__(self, cap: float | None):
        self.cap, self.spent, self.reserved = cap, 0.0, 0.0
        self.calls = 0  # reservations not settled yet: counted, since float sums do not return to 0.0
        self.exhausted = False

    def reserve(self, estimate: float) -> bool:
        if self.cap is not None and (self.spent >= self.cap or self.spent + self.reserved + estimate > self.cap):
            self.exhausted = True
            return False
        self.reserved += estimate
        self.calls += 1
        return True

    @property
    def in_flight(self) -> bool:
        return self.calls > 0

    def settle(self, estimate: float, actual: float) -> None:
        self.calls -= 1
        self.reserved = self.reserved - estimate if self.calls else 0.0
        self.spent += actual


def _messages(item: Item, cfg: CollectConfig) -> list[dict]:
    msgs = [{"role": "system", "content": cfg.system}] if cfg.system else []
    return msgs + [{"role": "user", "content": item.question}]


class _Run:
    """One collect run: shared by the workers of every endpoint (single event loop, no threads)."""

    def __init__(self, pool: Pool, judge: Judge, cfg: CollectConfig, backend: Backend, out, bar):
        self.pool, self.judge, self.cfg, self.backend, self.out, self.bar = pool, judge, cfg, backend, out, bar
        self.budget = Budget(cfg.max_usd)
        self.report = CollectReport()
        self.out_tokens: dict[str, list[float]] = defaultdict(list)
        self.started = 0
        self.stop = False
        self.settled = asyncio.Condition()  # notified when a call settles: its reservation is freed
        self.probing: set[str] = set()  # slots whose first call is out before any answer length is known

    def estimate(self, item: Item, slot: Slot) -> float:
        seen = self.out_tokens[slot.name]
        out = self.cfg.max_tokens or (sum(seen) / len(seen) if seen else DEFAULT_OUTPUT_GUESS)
        return slot.cost_usd(self.input_estimate(item), out)

    def input_estimate(self, item: Item) -> int:
        return approx_tokens((self.cfg.system or "") + item.question) + 8

    async def reserve(self, item: Item, slot: Slot) -> tuple[float, bool] | None:
        """Reserve this call's estimated cost under the cap, or None when it cannot fit.

        A call that does not fit while others are in flight waits for them: their reservations were
        guesses, and once they settle at their real cost (and the slot's measured answer length
        replaces the guess) it may fit. Only a call that does not fit with nothing in flight is
        given up, and the others go on (a cheaper slot's call may still fit)."""
        while True:
            est = self.estimate(item, slot)
            if self.budget.reserve(est):
                return est, False
            if not (self.cfg.max_tokens or self.out_tokens[slot.name] or slot.name in self.probing):
                # The guess is no bound (without --max-tokens nothing is), and a guess larger than the
                # cap would stop the run before it learnt anything: one call per slot goes out on its
                # input cost and a one-token answer, and its measured length prices the rest.
                probe = slot.cost_usd(self.input_estimate(item), 1)
                if self.budget.reserve(probe):
                    self.probing.add(slot.name)
                    return probe, True
            if not self.budget.in_flight or self.budget.spent >= (self.budget.cap or 0.0):
                return None
            async with self.settled:
                await self.settled.wait()

    async def worker(self, queue: asyncio.Queue) -> None:
        while not self.stop:
            try:
                item, slot = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if self.cfg.limit is not None and self.started >= self.cfg.limit:
                self.report.stopped_by_limit, self.stop = True, True
                return
            got = await self.reserve(item, slot)
            if got is None:
                self.report.stopped_by_budget = True
                self.report.over_budget += 1
                continue
            est, probe = got
            if self.cfg.limit is not None and self.started >= self.cfg.limit:  # reached while this one waited
                self.budget.settle(est, 0.0)
                self.report.stopped_by_limit, self.stop = True, True
                await self._notify()
                return
            self.started += 1
            try:
                await self.ask(item, slot, est)
            finally:
                self.bar.update(1)
                self.bar.set_postfix(spent=f"${self.budget.spent:.4f}", failed=self.report.failed, refresh=False)
                if probe:
                    self.probing.discard(slot.name)
                await self._notify()

    async def grade(self, question: str, answer: str, reference: str | None) -> Verdict:
        """The judge's verdict, its cost counted against the cap and a failed verdict counted."""
        verdict = await self.judge.grade(question, answer, reference)
        self.budget.spent += verdict.cost_usd
        self.report.judge_usd += verdict.cost_usd
        self.report.judge_failed += verdict.failed
        return verdict

    async def _notify(self) -> None:
        async with self.settled:
            self.settled.notify_all()

    async def ask(self, item: Item, slot: Slot, est: float) -> None:
        try:
            res = await self.backend.chat(slot, _messages(item, self.cfg), max_tokens=self.cfg.max_tokens,
                                          temperature=self.cfg.temperature)
        except UpstreamError as exc:
            self.budget.settle(est, 0.0)
            self.report.failed_by_slot[slot.name] = self.report.failed_by_slot.get(slot.name, 0) + 1
            if len(self.report.errors) < 20:
                self.report.errors.append(f"{item.id} x {slot.name}: {exc}")
            return
        in_tok = res.usage.get("prompt_tokens") or self.input_estimate(item)
        out_tok = res.usage.get("completion_tokens") or (approx_tokens(res.text) if res.text else 0)
        cost = slot.cost_usd(in_tok, out_tok)
        self.budget.settle(est, cost)
        self.out_tokens[slot.name].append(out_tok)
        if not res.text.strip():
            # Nothing to judge: an empty answer (a cut-off reasoning model, a filter) says nothing about
            # whether the model knows the answer, so the label is unknown, not wrong.
            verdict = Verdict(None, f"empty answer (finish_reason {res.finish_reason or 'none'})")
        elif self.judge.needs_all_answers:
            verdict = Verdict(None, f"pending: {self.judge.name} is decided once every model answered")
        else:
            verdict = await self.grade(item.question, res.text, item.reference)
        row = {"id": item.id, "question": item.question, "model": slot.name, "correct": verdict.score,
               "cost_usd": round(cost, 10), "input_tokens": in_tok, "output_tokens": out_tok,
               "latency_ms": res.latency_ms, "response": res.text, "destination": res.model,
               "slot_model": slot.model, "finish_reason": res.finish_reason, "attempts": len(res.attempts),
               "judge": self.judge.name, "judge_note": verdict.note}
        if self.judge.model:
            row["judge_model"] = self.judge.model
        if verdict.failed:
            row["judge_failed"] = True
        if not res.usage_reported:
            row["usage_estimated"] = True  # no usage came back: tokens and cost are the router's estimate
        row.update({k: v for k, v in (("reference", item.reference), ("task", item.task), ("split", item.split))
                    if v})
        self.out.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.out.flush()  # the OS has the row even if this process is killed next
        self.report.written += 1


def asked_slots(pool: Pool, names: tuple[str, ...] | None = None) -> list[Slot]:
    """The named slots (pool order; a disabled one too, when named), else every enabled slot."""
    if names:
        wanted = {pool.slot(n).name for n in names}  # unknown names raise, listing the pool's slots
        return [s for s in pool.models if s.name in wanted]
    slots = [s for s in pool.models if s.enabled]
    if not slots:
        raise InputError(f"{pool.source_path}: no enabled slots to ask; enable one or name slots with --models")
    return slots


def check_keys(slots: list[Slot], judge_slot: Slot | None = None) -> None:
    """Fail before the first call when any slot's API key is missing (names every one), the judge's too."""
    missing: list[tuple[str, MissingKeyError]] = []
    for role, s in [("slot", s) for s in slots] + ([("judge slot", judge_slot)] if judge_slot is not None else []):
        try:
            resolve_key(s)
        except MissingKeyError as exc:
            missing.append((role, exc))
    if missing:
        err = missing[0][1]
        err.args = ("missing API keys (keys are read from the environment only): "
                    + "; ".join(f"{role} {e.slot!r} needs {e.env_var}" for role, e in missing)
                    + ". Set them, or disable those slots (enabled: false) in the pool",)
        raise err


def check_resume(rows: list[dict], slots: list[Slot], judge: Judge, path: Path) -> None:
    """Refuse to append to a file whose earlier rows came from another destination or another judge:
    resuming keys on (question, slot), so a changed `model:` or judge would mix two label sources
    under one slot name without a trace."""
    problems = []
    for s in slots:
        mine = [r for r in rows if r.get("model") == s.name]
        models = sorted({r["slot_model"] for r in mine if r.get("slot_model")} - {s.model})
        if models:
            problems.append(f"slot {s.name!r}: the file's rows were answered by model {', '.join(models)}, "
                            f"the pool now sends this slot to {s.model}")
    judged = {(r.get("judge"), r.get("judge_model")) for r in rows
              if r.get("judge") is not None and r.get("model") in {s.name for s in slots}}
    other = sorted({f"{j}" + (f" ({m})" if m else "") for j, m in judged if (j, m) != (judge.name, judge.model)
                    and not (j == judge.name and m is None)})  # rows from before judge_model was recorded
    if other:
        problems.append(f"labels were judged by {', '.join(other)}; this run judges with {judge.name}"
                        + (f" ({judge.model})" if judge.model else ""))
    if problems:
        raise InputError(f"{path}: cannot resume into this file: " + "; ".join(problems)
                         + ". Write to a new --out file (or rename the slot), so each label file has one source")


async def rejudge_failed(path: Path, rows: list[dict], judge: Judge, items: list[Item], run: _Run,
                         progress: bool = True) -> None:
    """Grade again the rows whose judge failed in an earlier run (the answers are kept, so no model is
    asked again); the file is rewritten atomically with the new verdicts."""
    if judge.needs_all_answers:
        return
    refs = {it.id: it.reference for it in items}
    todo = [r for r in rows if r.get("judge_failed") and r.get("judge") == judge.name
            and isinstance(r.get("response"), str)]
    if not todo:
        return
    from tqdm.auto import tqdm

    for r in tqdm(todo, desc="re-judging", unit="row", disable=not progress):
        if run.budget.cap is not None and run.budget.spent >= run.budget.cap:
            run.report.stopped_by_budget = True
            run.report.judge_failed += 1  # still unknown: graded on a later run
            continue
        v = await run.grade(r.get("question", ""), r["response"], r.get("reference", refs.get(str(r.get("id")))))
        r["correct"], r["judge_note"] = v.score, v.note
        if not v.failed:
            r.pop("judge_failed", None)
            run.report.rejudged += 1
    rewrite(path, rows)


def rewrite(path: Path, rows: list[dict]) -> None:
    """The label file replaced whole by `rows` (atomically: a crash leaves the old file)."""
    with atomic_write(path) as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


async def collect_async(pool: Pool, items: list[Item], out: str | Path, judge: Judge,
                        cfg: CollectConfig | None = None, *, client=None, progress: bool = True) -> CollectReport:
    from tqdm.auto import tqdm

    from router.upstream.client import upstream_client

    cfg = cfg or CollectConfig()
    out = Path(out)
    if not out.name.endswith(".jsonl"):
        raise InputError(f"{out}: collect appends rows as they complete, so --out must be a .jsonl file")
    slots = asked_slots(pool, cfg.models)
    check_keys(slots, judge.slot)
    cut_torn_tail(out)
    rows = read_collected(out)
    check_resume(rows, slots, judge, out)
    done = {row_key(r) for r in rows}
    jobs = [(it, s) for it in items for s in slots if (it.id, s.name) not in done]
    queues: dict[str, asyncio.Queue] = defaultdict(asyncio.Queue)
    for it, s in jobs:
        queues[s.api_base].put_nowait((it, s))
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    own = client is None
    if own:
        n = cfg.concurrency * max(1, len(queues)) + 4
        client = upstream_client(max_connections=n, timeout=cfg.timeout)
    try:
        run = _Run(pool, judge, cfg, Backend(client, cfg.retries, cfg.backoff, cfg.timeout), None, None)
        await rejudge_failed(out, rows, judge, items, run, progress)
        with open(out, "a", encoding="utf-8") as fh, tqdm(total=len(jobs), desc="collecting", unit="call",
                                                            disable=not progress) as bar:
            run.out, run.bar = fh, bar
            run.report.pending, run.report.skipped = len(jobs), len(items) * len(slots) - len(jobs)
            await asyncio.gather(*(run.worker(q) for q in queues.values() for _ in range(cfg.concurrency)))
    finally:
        if own:
            await client.aclose()
    report = run.report
    report.spent_usd = round(run.budget.spent, 8)
    report.seconds = round(time.perf_counter() - t0, 3)
    if judge.needs_all_answers:
        finalize_group_judge(out, judge)
    return report


def collect(pool: Pool, items: list[Item], out: str | Path, judge: Judge, cfg: CollectConfig | None = None,
            progress: bool = True) -> CollectReport:
    return asyncio.run(collect_async(pool, items, out, judge, cfg, progress=progress))


def finalize_group_judge(path: Path, judge: Judge) -> int:
    """Grade every question's collected answers together (vote) and rewrite the file atomically."""
    rows = read_collected(path)
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r.get("judge") == judge.name and isinstance(r.get("response"), str):
            groups[row_key(r)[0]].append(r)
    for group in groups.values():
        verdicts = judge.grade_group({r["model"]: r["response"] for r in group}, group[0].get("reference"))
        for r in group:
            v = verdicts[r["model"]]
            r["correct"], r["judge_note"] = v.score, v.note
    rewrite(path, rows)
    return sum(len(g) for g in groups.values())


def summarize(path: str | Path) -> list[dict[str, Any]]:
    """Per model: rows, accuracy over known labels, unknown count, total cost, mean latency."""
    acc: dict[str, dict[str, Any]] = {}
    for r in read_collected(Path(path)):
        s = acc.setdefault(r["model"], {"model": r["model"], "rows": 0, "known": 0, "correct": 0.0,
                                        "cost_usd": 0.0, "latency_ms": 0.0})
        s["rows"] += 1
        if r.get("correct") is not None:
            s["known"] += 1
            s["correct"] += float(r["correct"])
        s["cost_usd"] += float(r.get("cost_usd") or 0)
        s["estimated"] = s.get("estimated", 0) + bool(r.get("usage_estimated"))
        s["latency_ms"] += float(r.get("latency_ms") or 0)
    return [{"model": s["model"], "rows": s["rows"], "unknown": s["rows"] - s["known"],
             "accuracy": round(s["correct"] / s["known"], 3) if s["known"] else None,
             "cost_usd": round(s["cost_usd"], 6), "mean_latency_ms": round(s["latency_ms"] / s["rows"], 1),
             "estimated": s.get("estimated", 0)}
            for s in acc.values()]
