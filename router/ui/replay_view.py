"""The sweep tab's "Replay an audit log against this pool": run router.audit.replay on an uploaded
log and format its report (summary HTML, the from -> to matrix as table rows, the differences file)."""

from __future__ import annotations

import html
import tempfile
from typing import Any

from router.audit.replay import ReplayReport, replay
from router.errors import InputError
from router.routing.router import PrefillRouter


def run(router: PrefillRouter, upload: str | None, tolerance: float | None, progress: bool = True,
        ) -> tuple[ReplayReport, str]:
    """Replay `upload` against the router's pool; `tolerance` None = each line's logged tolerance."""
    if not upload:
        raise InputError("upload an audit log (.jsonl written by the proxy with --audit-log)")
    out = tempfile.NamedTemporaryFile("w", suffix=".jsonl", prefix="router-replay-diff-", delete=False)
    out.close()
    return replay(upload, router, tolerance=tolerance, out=out.name, progress=progress), out.name


def matrix_table(r: ReplayReport, labels: dict[str, str]) -> tuple[list[str], list[list[Any]]]:
    slots = sorted({s for row in r.matrix.values() for s in row} | set(r.matrix))
    headers = ["logged \\ replayed"] + [labels.get(s, s) for s in slots]
    rows = [[labels.get(a, a)] + [r.matrix.get(a, {}).get(b, 0) for b in slots] for a in slots]
    return headers, rows


def summary_html(r: ReplayReport) -> str:
    skipped = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in r.skipped.items()) or "none"
    if r.same_checkpoint:
        repro = (f"{r.reproduced} of {r.same_checkpoint} lines scored by this checkpoint reproduced within "
                 f"{r.p_tolerance:g} (max |ΔP| {r.max_abs_dp:.1e})"
                 + ("" if r.reproducible else f" · <b>drift on {r.drifted} lines</b>"))
    else:
        repro = "no line was scored by this pool's checkpoint: a what-if replay (no P check)"
    needs_store = " · replay needs <code>audit_query_text: store</code>" if r.skipped.get("no_query") else ""
    tol = "as logged" if r.tolerance is None else f"{r.tolerance:g}"
    return (f"<div id='replay-done' class='basis'><p>{r.lines} lines · {r.replayed} replayed at tolerance {tol} · "
            f"skipped: {html.escape(skipped)}{needs_store}</p>"
            f"<p>{repro}</p><p>decisions changed: <b>{r.changed}</b> of {r.replayed}</p>"
            f"<p>spend: logged real ${r.logged_real_usd:.6f} · replayed decisions (estimate) "
            f"${r.replay_estimated_usd:.6f} · logged decisions (estimate) ${r.logged_estimated_usd:.6f}</p>"
            f"<p class='muted'>checkpoint {html.escape(r.checkpoint_fingerprint)} · pool {html.escape(r.pool_hash)}</p></div>")
