"""What the playground browser tests (test_ui_browser*.py) share: where chromium is and the page helpers.
Their fixtures (one app server for the run, one chromium per module) are in tests/ui_browser_fixtures.py.
"""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = os.environ.get("ROUTER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
QUERY = "Prove that the square root of 2 is irrational."
DESKTOP, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}
# An element's box in CSS pixels.
RECT = "sel => { const e = document.querySelector(sel); const r = e.getBoundingClientRect(); " \
       "return {x: r.x, y: r.y, w: r.width, h: r.height, right: r.right, bottom: r.bottom}; }"


def have_chromium() -> bool:
    return Path(CHROMIUM).exists()


NO_CHROMIUM = f"no chromium at {CHROMIUM} (apt-get install chromium)"


def open_page(browser, url: str, viewport=DESKTOP, query: str = ""):
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(60_000)
    page.goto(url + "/" + query)
    page.wait_for_selector("#query textarea")
    return page


def screenshot(page, folder: str, name: str) -> None:
    """Full-page PNG under artifacts/<folder>/ (gitignored), for a human to look at after a run."""
    out = ARTIFACTS / folder
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / name), full_page=True)


def wait_chosen(page, expected: str) -> None:
    page.wait_for_function("v => document.querySelector('#decision')?.dataset.chosen === v", arg=expected)


def set_tolerance(page, value: float) -> None:
    box = page.locator("#tolerance input[type=number]")
    box.fill(str(value))
    box.press("Enter")
