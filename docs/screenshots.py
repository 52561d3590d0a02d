"""Regenerate the README's screenshots of every playground tab: docs/playground-<tab>.png (and docs/playground.png).

    python docs/screenshots.py [--chromium /usr/bin/chromium]

Serves app.create_app() on a free 127.0.0.1 port, drives headless chromium at 1440x900 (and the Route tab
at 390x844 for the phone layout), and writes one PNG per tab. Nothing is sent upstream.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
QUERY = "Prove that the square root of 2 is irrational."


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--out", default=str(ROOT / "docs"))
    args = ap.parse_args()
    out = Path(args.out)

    from playwright.sync_api import sync_playwright
    from serving import ServerThread

    import app

    def shot(page, name):
        page.wait_for_timeout(500)  # plotly's transitions
        page.screenshot(path=str(out / name), full_page=True)
        print(out / name)

    with ServerThread(app.create_app()) as server, sync_playwright() as p:
        b = p.chromium.launch(executable_path=args.chromium, headless=True, args=ARGS)
        page = b.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(server.url + "/")
        page.wait_for_selector("#query textarea")
        page.fill("#query textarea", QUERY)
        page.click("#route-btn")
        page.wait_for_selector("#explain")
        page.wait_for_selector("#p-chart .js-plotly-plot")
        shot(page, "playground.png")
        shot(page, "playground-route.png")
        page.get_by_role("button", name="Japanese chitchat").click()
        page.wait_for_function("() => document.querySelector('#decision')?.innerText.length > 0")
        page.get_by_role("tab", name="Session").click()
        page.wait_for_selector("#dist-chart .js-plotly-plot")
        shot(page, "playground-session.png")
        page.get_by_role("tab", name="Tolerance sweep").click()
        page.click("#sweep-btn")
        page.wait_for_selector("#sweep-curve .js-plotly-plot")
        shot(page, "playground-sweep.png")
        page.get_by_role("tab", name="Monthly projection").click()
        page.click("#project-btn")
        page.wait_for_selector("#projection-chart .js-plotly-plot")
        shot(page, "playground-projection.png")
        page.get_by_role("tab", name="Compare").click()
        page.click("#cmp-article-btn")
        page.wait_for_selector("#compare-chart .js-plotly-plot")
        shot(page, "playground-compare.png")
        page.get_by_role("tab", name="Pool design").click()
        page.fill("#design-in input", "3")
        page.fill("#design-out input", "12")
        page.click("#design-apply")
        page.wait_for_selector("#design-state[data-active='1']")
        shot(page, "playground-design.png")
        page.get_by_role("tab", name="Audit").click()
        page.wait_for_function("() => document.querySelector('#audit-table').innerText.includes('routed only')")
        shot(page, "playground-audit.png")
        page.close()
        phone = b.new_page(viewport={"width": 390, "height": 844})
        phone.set_default_timeout(120_000)
        phone.goto(server.url + "/?__theme=dark")
        phone.wait_for_selector("#query textarea")
        phone.fill("#query textarea", QUERY)
        phone.click("#route-btn")
        phone.wait_for_selector("#explain")
        shot(phone, "playground-phone-dark.png")
        b.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
