"""Playground latency in a real browser: from the click on Route to the new chart, and from a slider move
to the re-drawn chart (no encoder pass).

    python -m benchmarks.bench_ui [--repeats 20] [--chromium /usr/bin/chromium]

Serves app.create_app() with uvicorn on a free 127.0.0.1 port, drives headless chromium with
Playwright, and prints median and p90 in ms with the load average at the end of the run. Every Route
click uses a different question, so each one pays for a real encoder pass; the chart counts as drawn
when plotly has replaced its data.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from router.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
CHART_CHANGED = """old => { const gd = document.querySelector('#p-chart .js-plotly-plot');
    return !!(gd && gd.data && gd._fullLayout && JSON.stringify(gd.data.map(t => t.x)) !== old); }"""
CHART_DATA = """() => { const gd = document.querySelector('#p-chart .js-plotly-plot');
    return gd && gd.data ? JSON.stringify(gd.data.map(t => t.x)) : ''; }"""


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def timed(page, action) -> float:
    old = page.evaluate(CHART_DATA)
    t0 = time.perf_counter()
    action()
    page.wait_for_function(CHART_CHANGED, arg=old, polling="raf")
    return (time.perf_counter() - t0) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    import app
    from router.ui.playground import load_samples
    from tests.serving import ServerThread

    questions = [s["question"] for s in load_samples()]
    with ServerThread(app.create_app()) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(server.url + "/")
        page.wait_for_selector("#query textarea")
        page.fill("#query textarea", "warm-up question")
        timed(page, lambda: page.click("#route-btn"))

        route_ms, slider_ms = [], []
        box = page.locator("#tolerance input[type=number]")
        for i in range(args.repeats):
            page.fill("#query textarea", f"{questions[i % len(questions)]} (variant {i})")
            route_ms.append(timed(page, lambda: page.click("#route-btn")))
            tol = 1.0 if i % 2 == 0 else 0.0  # alternate extremes so that the choice (and the chart) changes

            def move(tol=tol):
                box.fill(str(tol))
                box.press("Enter")
            slider_ms.append(timed(page, move))
        browser.close()

    load = os.getloadavg()  # the numbers mean little on a busy machine: say how busy it was
    print(f"playground latency over {args.repeats} queries (headless chromium, {server.url}; "
          f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}, {os.cpu_count()} CPUs):")
    for name, xs in (("route click -> chart", route_ms), ("slider move -> chart", slider_ms)):
        print(f"  {name:22s} median {statistics.median(xs):7.1f} ms   p90 {pct(xs, 90):7.1f} ms   "
              f"min {min(xs):7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
