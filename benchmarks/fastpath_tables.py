"""The two tables of docs/fastpath.md, rendered from the benchmarks' result files.

    python -m benchmarks.fastpath_tables [--quality docs/fastpath_quality.json] [--speed docs/fastpath_speed.json]

Quality rows come from benchmarks/fastpath_quality.py (one per option and label set), speed rows from
benchmarks/bench_fastpath.py --json. Prints Markdown; ratios are against the first speed row (today's
e5 path when listed first) and, for quality, against the e5-torch row of the same set.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from router.paths import PROJECT_ROOT as ROOT

SET_NAMES = {"rb": "RouterBench", "rl": "RouteLLM"}


def _pct(v):
    return "never" if v is None else f"{0.0 if abs(v) < 5e-5 else v:.1%}"


def short_head(name: str) -> str:
    """average(knn[k=80,weighting=similarity]+mlp[...]) -> avg(knn-80 sim + mlp)."""
    import re

    s = re.sub(r"knn\[k=(\d+),weighting=(\w+)\]", lambda m: f"knn-{m.group(1)} {m.group(2)[:3]}", name or "?")
    s = re.sub(r"(\w+)\[[^\]]*\]", r"\1", s)
    return s.replace("average(", "avg(").replace("+", " + ")


def quality_table(rows: list[dict]) -> str:
    by = {(r["option"], r["set"]): r for r in rows}
    options = list(dict.fromkeys(r["option"] for r in rows))
    sets = [s for s in SET_NAMES if any(r["set"] == s for r in rows)]
    head = ["option"]
    for s in sets:
        n = SET_NAMES[s]
        head += [f"{n} AIQ (Δ vs e5-torch)", f"{n} saved @parity", f"{n} saved @95%", f"{n} head"]
    head += ["EN/JA mean abs ΔP", "EN/JA same choice"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for o in options:
        cells = [o]
        for s in sets:
            r, ref = by.get((o, s)), by.get(("e5-torch", s))
            if r is None:
                cells += ["not run"] * 4
                continue
            d = "" if ref is None or o == "e5-torch" else f" ({r['aiq'] - ref['aiq']:+.3f})"
            cells += [f"{r['aiq']:.3f}{d}", _pct(r["save_parity"]), _pct(r["save_95"]), short_head(r["head"])]
        cl = (by.get((o, "rb")) or by.get((o, sets[0])) or {}).get("crosslingual") or {}
        cells += [f"{cl['mean_abs_dp']:.3f}" if cl else "—", f"{cl['agreement']:.0%}" if cl else "—"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def speed_table(res: dict) -> str:
    rows = res["rows"]
    names = list(rows)
    head = ["option", "route() p50 / p95, 21 tok", "bare p50", "route/bare", "vs e5-torch",
            "route() p50 / p95, 256 tok", "bare p50", "route/bare", "vs e5-torch", "score q/s (× e5)",
            "load s", "peak RSS MB", "artifact MB", "runtime libs MB"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for n in names:
        x = rows[n]
        cells = [n]
        for label in ("short", "long"):
            s = x[label]
            cells += [f"{s['route_p50']:.2f} / {s['route_p95']:.2f} ms", f"{s['bare_p50']:.2f} ms",
                      f"{s['route_over_bare']:.2f}", f"{s['route_vs_ref']:.3f}"]
        cells += [f"{x['score_qps']:.1f} ({x['score_vs_ref']:.1f})",
                  f"{x['load_s']:.2f}" if "load_s" in x else "—", f"{x['rss_mb']:.0f}" if "rss_mb" in x else "—",
                  f"{x['artifact_mb']:.0f}", f"{x['library_mb']:.0f}"]
        out.append("| " + " | ".join(cells) + " |")
    la = res.get("loadavg")
    return "\n".join(out) + (f"\n\nLoad average at the end of the run: {la[0]:.2f}; {res.get('repeats')} interleaved "
                             "runs per option and text, medians." if la else "")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quality", default=str(ROOT / "docs" / "fastpath_quality.json"))
    ap.add_argument("--speed", default=str(ROOT / "docs" / "fastpath_speed.json"))
    a = ap.parse_args()
    for title, path, fn in (("Quality", a.quality, quality_table), ("Speed", a.speed, speed_table)):
        p = Path(path)
        if p.exists():
            print(f"### {title}\n\n{fn(json.loads(p.read_text(encoding='utf-8')))}\n")


if __name__ == "__main__":
    main()
