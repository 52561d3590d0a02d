"""Detector overhead per request: every built-in detector plus a regex and a keyword list, over a
~2,000-token conversation (system prompt, user turns, a tool call and its result).

    python -m benchmarks.bench_sensitivity [--repeats 200] [--tokens 2000]

Prints the median and p90 of `scan` (the rules over every string of every message), of `redact`
when a redact rule matched, of the scan of the request's pass-through fields (what a coding agent
sends besides messages: `--tools` tool definitions with JSON schemas, metadata, user), and the token
count (the bundled encoder's tokenizer, when it loads; otherwise ~0.75 words per token). Then an
agent's resent history of `--history-tokens`: its cold scan, and the next turn's scan (the same
history plus one message) with the per-message cache (router/routing/scan_cache.py). Pure CPU,
single thread: on a busy machine the numbers are noisy.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from router.routing.sensitivity import BUILTIN_NAMES, SensitiveRule, redact, scan

WORDS = ("the router reads a query and predicts which model answers it correctly at the lowest cost while "
         "customers ask about invoices orders shipping refunds code reviews and deployment logs").split()


def conversation(tokens: int, seed: int = 0) -> list[dict]:
    rnd = random.Random(seed)
    words = int(tokens * 0.75)

    def text(n):
        return " ".join(rnd.choice(WORDS) for _ in range(n))

    per = words // 6
    return [
        {"role": "system", "content": "You are a support agent. " + text(per)},
        {"role": "user", "content": text(per) + " my card is 4111 1111 1111 1111 and mail jane@corp.example"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "t1", "type": "function", "function": {
            "name": "crm", "arguments": '{"query": "' + text(per // 4) + '"}'}}]},
        {"role": "tool", "tool_call_id": "t1", "content": text(per) + " host 10.0.3.7 ssn 123-45-6789"},
        {"role": "assistant", "content": text(per)},
        {"role": "user", "content": [{"type": "text", "text": text(per) + " is project falcon confidential?"}]},
    ]


def agent_fields(tools: int, seed: int = 1) -> dict:
    """A coding agent's other fields: `tools` definitions (a description and a parameter schema each,
    about the size Claude Code and Codex send), plus metadata and a user id."""
    rnd = random.Random(seed)

    def text(n):
        return " ".join(rnd.choice(WORDS) for _ in range(n))

    defs = [{"type": "function", "function": {
        "name": f"tool_{i}", "description": text(120),
        "parameters": {"type": "object", "required": ["path"], "properties": {
            "path": {"type": "string", "description": text(25)},
            "pattern": {"type": "string", "description": text(25)},
            "limit": {"type": "integer", "description": text(12)},
            "mode": {"type": "string", "enum": ["read", "write", "append"], "description": text(12)}}}}}
        for i in range(tools)]
    return {"tools": defs, "tool_choice": "auto", "metadata": {"session": "s-42", "repo": "acme/api"},
            "user": "dev-17", "temperature": 0.2}


def count_tokens(msgs) -> tuple[int, str]:
    text = " ".join(str(m.get("content")) for m in msgs)
    try:
        from router.model.encoder import get_encoder
        from router.model.head import load_checkpoint
        from router.paths import ASSETS_DIR

        enc = get_encoder(load_checkpoint(ASSETS_DIR / "checkpoint").encoder_spec)
        return int(enc.count_tokens(text)), "encoder tokenizer"
    except Exception:  # noqa: BLE001 -- the count is context only
        return int(len(text.split()) / 0.75), "words / 0.75"


def timed(fn, repeats):
    """(median wall ms, p90 wall ms, median CPU ms): CPU time leaves out waiting for a busy core."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)
    wall.sort()
    return statistics.median(wall), wall[int(0.9 * (len(wall) - 1))], statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--tools", type=int, default=20, help="tool definitions in the pass-through fields")
    ap.add_argument("--history-tokens", type=int, default=100_000, help="the resent agent history's size")
    args = ap.parse_args()
    rules = [SensitiveRule(name="pii", detectors=BUILTIN_NAMES, patterns=[r"(?i)project\s+falcon"],
                           keywords=["confidential", "internal only"], action="local_only"),
             SensitiveRule(name="cards", detectors=["credit_card"], action="redact")]
    msgs = conversation(args.tokens)
    n, how = count_tokens(msgs)
    res = scan(rules, msgs)
    print(f"conversation: {len(msgs)} messages, {n} tokens ({how}); matches: "
          + ", ".join(f"{m.rule}/{m.detector}@{m.message}x{m.spans}" for m in res.matches))
    med, p90, cpu = timed(lambda: scan(rules, msgs), args.repeats)
    print(f"scan   ({len(BUILTIN_NAMES)} detectors + 1 regex + 2 keywords): median {med:.3f} ms, p90 {p90:.3f} ms, "
          f"CPU median {cpu:.3f} ms over {args.repeats} runs")
    med, p90, cpu = timed(lambda: redact(msgs, scan(rules, msgs)), args.repeats)
    print(f"scan + redact: median {med:.3f} ms, p90 {p90:.3f} ms, CPU median {cpu:.3f} ms")
    fields = agent_fields(args.tools)
    kb = len(json.dumps(fields)) / 1024
    med, p90, cpu = timed(lambda: scan(rules, [fields]), args.repeats)
    print(f"fields scan ({args.tools} tool definitions, {kb:.0f} KB of JSON): median {med:.3f} ms, p90 {p90:.3f} ms, "
          f"CPU median {cpu:.3f} ms")
    from router.routing.scan_cache import ScanCache

    units, fcache = [{k: v} for k, v in fields.items()], ScanCache()  # one unit per field, as the proxy scans them
    scan(rules, units, fcache)
    med, p90, cpu = timed(lambda: scan(rules, units, fcache), args.repeats)
    print(f"fields scan, resent unchanged (scan cache): median {med:.3f} ms, p90 {p90:.3f} ms")
    long = conversation(args.history_tokens, seed=2)
    reps = max(5, args.repeats // 20)
    med, p90, cpu = timed(lambda: scan(rules, long), reps)
    print(f"history of {args.history_tokens} tokens ({len(long)} messages), cold: median {med:.2f} ms, p90 {p90:.2f} ms "
          f"over {reps} runs")
    cache = ScanCache()
    scan(rules, long, cache)
    turns = iter(range(10**9))

    def next_turn():
        long.append({"role": "user", "content": f"and step {next(turns)}, please"})
        scan(rules, long, cache)

    med, p90, cpu = timed(next_turn, reps)
    print(f"the next turn with the scan cache (hash every message, scan the new one): median {med:.2f} ms, "
          f"p90 {p90:.2f} ms")
    none = [SensitiveRule(name="none", keywords=["zzzz-never"], action="block")]
    med, p90, cpu = timed(lambda: scan(none, msgs), args.repeats)
    print(f"floor (one keyword, no match): median {med:.3f} ms, p90 {p90:.3f} ms, CPU median {cpu:.3f} ms")


if __name__ == "__main__":
    main()
