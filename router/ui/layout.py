"""The Gradio playground: layout, then every listener wired in `_wire`; handlers stay thin.

Per-browser-session data lives in one `gr.State(Session())` (Gradio copies the initial value
for every visitor); the registry of routers is read-only and shared. `app.py` mounts the Blocks
returned by `build_ui` at "/" with `CSS_PATH` and `THEME` (Gradio 6 takes them at mount time).
"""

from __future__ import annotations

from types import SimpleNamespace
from pathlib import Path

import gradio as gr

from router.routing import costs
from router.ui import playground
from router.ui.access import UIAccess, ui_access
from router.ui.spend import audit_answer, audit_review
from router.ui.uploads import checked_upload
from router.ui import views as V
from router.paths import ASSETS_DIR
from router.errors import RouterError
from router.routing.registry import RouterRegistry
from router.ui.charts import decision_figure, distribution_figure, projection_figure, sweep_figures

CSS_PATH = str(ASSETS_DIR / "style.css")
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="emerald", neutral_hue="slate",
                       # Local font stacks only: the page must render offline (no Google Fonts request).
                       font=["Inter", "ui-sans-serif", "system-ui", "sans-serif"],
                       font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"]).set(
    button_primary_background_fill="*primary_600", button_primary_background_fill_hover="*primary_700",
    button_primary_text_color="white")

HEADER = """<div class='app-header'><h1>Prefill Router</h1>
<p>A small encoder reads your query, a trained head predicts every model's <b>P(correct)</b>, and the router
picks the <b>cheapest model within <i>tolerance</i> of the best</b>. Move the slider to trade quality for cost.</p></div>"""


def _call(fn, *args, **kwargs):
    """Run library code; its errors become a readable message in the page, never a stack trace."""
    try:
        return fn(*args, **kwargs)
    except RouterError as exc:
        raise gr.Error(str(exc), print_exception=False) from None


def build_ui(registry: RouterRegistry, audit=None, access: UIAccess | None = None) -> gr.Blocks:
    """`audit`: the server's AuditLog (Send and Auto review write their calls there); `access`:
    who may send and how much (default: from the environment, see router/ui/access.py)."""
    access = access or ui_access()
    samples = playground.load_samples()
    pool = registry.get().pool
    w = SimpleNamespace()
    with gr.Blocks(title="Prefill Router") as demo:
        w.session = gr.State(playground.Session())
        with gr.Sidebar(open=True, width=380, elem_id="sidebar"):
            w.policy = gr.Dropdown(registry.policies, value=pool.policy, label="Pool", elem_id="pool")
            w.pool_info = gr.HTML(V.pool_html(pool))
            w.tolerance = gr.Slider(0, 1, value=pool.default_tolerance, step=0.01, label="Tolerance",
                                    info="0 = best predicted model · 1 = cheapest", elem_id="tolerance")
            off = not access.send_enabled
            w.send = gr.Checkbox(False, label="Send to model", elem_id="send-toggle", interactive=not off,
                                 info=access.send_off_reason if off else "stream the answer from the chosen model")
            w.review = gr.Checkbox(False, label="Auto review", info="the pool's most expensive model judges the answer",
                                   elem_id="review-toggle", interactive=not off)
            w.models = gr.CheckboxGroup(V.model_choices(pool), value=V.enabled_names(pool), label="Models (on/off)",
                                        info="prices per million input / output tokens", elem_id="models",
                                        elem_classes=["model-toggles"])
        gr.HTML(HEADER)
        with gr.Tabs():
            with gr.Tab("Route", id="route"):
                _route_tab(w, samples)
            with gr.Tab("Session", id="session") as w.session_tab:
                w.stats2 = gr.HTML(V.stats_html(costs.SessionStats(), {}), elem_id="session-stats")
                w.dist = gr.Plot(show_label=False, elem_id="dist-chart")
                w.reset = gr.Button("Reset session stats", variant="secondary", elem_id="reset-btn")
            with gr.Tab("Tolerance sweep", id="sweep"):
                _sweep_tab(w, len(samples))
            with gr.Tab("Monthly projection", id="projection"):
                _projection_tab(w)
            with gr.Tab("Audit", id="audit") as w.audit_tab:
                gr.Markdown("This session's decisions, in the audit-log format of the proxy (one JSON object per line).")
                w.audit = gr.Dataframe(headers=V.AUDIT_HEADERS, interactive=False, wrap=True, elem_id="audit-table")
                w.download = gr.DownloadButton("Download JSONL", value=None, interactive=False, elem_id="download-btn",
                                               size="md")
        _wire(registry, w, samples, audit, access)
    return demo


def _route_tab(w, samples) -> None:
    with gr.Row(equal_height=True):
        w.query = gr.Textbox(label="Query", lines=3, max_lines=12, scale=5, elem_id="query",
                             placeholder="Ask anything, or pick a sample below")
        w.route = gr.Button("Route", variant="primary", scale=1, elem_id="route-btn")
    with gr.Row(elem_classes=["samples"]):
        w.sample_btns = [gr.Button(s["label"], size="sm", elem_classes=["sample-btn"]) for s in samples]
    w.decision = gr.HTML("<div class='decision empty'>Route a query to see the decision.</div>", elem_id="decision-box")
    w.chart = gr.Plot(show_label=False, elem_id="p-chart")
    w.costs = gr.Dataframe(headers=V.COST_HEADERS, interactive=False, label="Expected cost of each model for this query",
                           elem_id="cost-table", column_widths=["22%", "11%", "14%", "9%", "9%", "13%", "22%"])
    w.answer_meta = gr.HTML(elem_id="answer-meta-box")
    w.answer = gr.Markdown(elem_id="answer", elem_classes=["answer"])
    w.review_out = gr.HTML(elem_id="review-box")
    w.stats = gr.HTML(V.stats_html(costs.SessionStats(), {}), elem_id="stats-box")


def _sweep_tab(w, n_samples: int) -> None:
    gr.Markdown(f"Route a question set at every tolerance of a grid. Without an upload, the {n_samples} sample "
                "questions are used. Scores are computed once; each tolerance only re-applies the rule.")
    with gr.Row():
        w.sweep_file = gr.File(label="Questions (.txt one per line, or .jsonl)", file_types=[".txt", ".jsonl"],
                               type="filepath", elem_id="sweep-file")
        with gr.Column():
            with gr.Row():
                w.t_start = gr.Number(0.0, label="From", minimum=0, maximum=1, step=0.05)
                w.t_stop = gr.Number(0.5, label="To", minimum=0, maximum=1, step=0.05)
                w.t_step = gr.Number(0.05, label="Step", minimum=0.01, maximum=1, step=0.01)
            w.run_sweep = gr.Button("Run sweep", variant="primary", elem_id="sweep-btn")
    w.sweep_summary = gr.HTML(elem_id="sweep-summary")
    w.sweep_mix = gr.Plot(show_label=False, elem_id="sweep-mix")
    w.sweep_curve = gr.Plot(show_label=False, elem_id="sweep-curve")
    w.sweep_table = gr.Dataframe(headers=V.SWEEP_HEADERS, interactive=False, elem_id="sweep-table")


def _projection_tab(w) -> None:
    gr.Markdown("Monthly spend if every request went to the baseline model, vs routed at the sidebar's tolerance.")
    with gr.Row():
        w.team = gr.Number(50, label="Team size", minimum=0, precision=0)
        w.per_person = gr.Number(600, label="Requests per person per month", minimum=0, precision=0)
        w.avg_in = gr.Number(1500, label="Average input tokens", minimum=0, precision=0)
        w.avg_out = gr.Number(600, label="Average output tokens", minimum=0, precision=0)
    w.mix_source = gr.Radio(["tolerance sweep", "this session"], value="tolerance sweep", label="Model mix from")
    w.project = gr.Button("Project", variant="primary", elem_id="project-btn")
    w.proj_out = gr.HTML(elem_id="projection-box")
    w.proj_chart = gr.Plot(show_label=False, elem_id="projection-chart")


# ---- handlers: unpack, call the library, format --------------------------------------------------

def _session_outputs(session, pool) -> tuple:
    """Stats, the chosen-model chart and the audit table (the Session and Audit tabs)."""
    st, html = V.stats_for(session.records, pool)
    labels = V.labels_of(pool)
    return html, distribution_figure(st.distribution, labels), V.audit_rows(session.records, labels)


def _decision_outputs(session, pool, result):
    # Only what the Route tab shows: the other tabs refresh when opened, which keeps slider moves light.
    return (session, V.decision_html(result), decision_figure(result), V.cost_rows(result),
            V.stats_for(session.records, pool)[1])


def _wire(registry: RouterRegistry, w, samples, audit=None, access: UIAccess | None = None) -> None:
    access = access or ui_access()
    decision_out = [w.session, w.decision, w.chart, w.costs, w.stats]
    answer_out = [w.session, w.answer_meta, w.answer, w.review_out, w.stats]
    tab_out = [w.stats2, w.dist, w.audit]
    send_in = [w.session, w.send, w.review]

    def on_route(session, policy, query, tolerance, enabled):
        router = registry.get(policy)
        result = _call(playground.route, router, session, query, tolerance, enabled)
        return _decision_outputs(session, router.pool, result)

    def on_redecide(session, policy, tolerance, enabled):
        router = registry.get(policy)
        result = _call(playground.redecide, router, session, tolerance, enabled)
        return _decision_outputs(session, router.pool, result) if result else gr.skip()

    def on_pool(session, policy):
        pool = registry.get(policy).pool
        return (V.pool_html(pool), gr.update(value=pool.default_tolerance),
                gr.update(choices=V.model_choices(pool), value=V.enabled_names(pool)))

    async def on_send(session, send_on, review_on):
        if not (send_on and session.result is not None):
            yield gr.skip()
            return
        if not access.send_enabled:
            raise gr.Error(access.send_off_reason, print_exception=False)
        from router.upstream.client import upstream_client

        router = registry.get(session.policy)
        async with upstream_client() as client:
            async for ans in playground.send(router, session, client, max_tokens=access.max_tokens):
                yield session, V.answer_html(ans), ans.text, "", gr.skip()
            audit_answer(audit, session.records[-1])
            rv = (await playground.review_answer(router, session, client, ans, max_tokens=min(300, access.max_tokens))
                  if review_on else None)
            audit_review(audit, router, session.request_id, rv)
        yield session, V.answer_html(ans), ans.text, V.review_html(rv), V.stats_for(session.records, router.pool)[1]

    def on_tab(session, policy):
        return _session_outputs(session, registry.get(policy).pool)

    def on_reset(session, policy):
        session.reset()
        html, dist, audit = _session_outputs(session, registry.get(policy).pool)
        return session, html, html, dist, audit

    def on_sweep(session, policy, enabled, upload, start, stop, step, progress=gr.Progress(track_tqdm=True)):
        router = registry.get(policy)
        texts = (_call(playground.load_questions, _call(checked_upload, upload)) if upload
                 else [s["question"] for s in samples])
        grid = _call(costs.tolerance_grid, start, stop, step)
        sw = session.sweep = _call(playground.run_sweep, router, texts, grid, enabled)
        labels, base = V.labels_of(router.pool), router.pool.baseline_slot.label
        mix, curve = sweep_figures(sw, labels, base)
        summary = f"<p class='basis' id='sweep-done'>{sw.questions} questions × {len(grid)} tolerances · estimated costs.</p>"
        return session, summary, mix, curve, V.sweep_rows(sw, labels)

    def on_project(session, policy, tolerance, enabled, team, per_person, avg_in, avg_out, source):
        router = registry.get(policy)
        mix, source_text = _call(_projection_mix, router, session, tolerance, enabled, samples, source)
        pool, base = router.pool, router.pool.baseline_slot
        proj = _call(costs.monthly_projection, team, per_person, avg_in, avg_out, mix, costs.slot_prices(pool.models),
                     base.name)
        return session, V.projection_html(proj, source_text, base.label), projection_figure(
            proj, V.labels_of(pool), base.label)

    def on_export(session):
        path = playground.export_jsonl(session.records) if session.records else None
        return gr.update(value=path, interactive=path is not None)

    # Gradio runs each listener one call at a time across all visitors by default; these are light (or
    # wait on an upstream), so let visitors run them side by side. The sweep keeps a small limit: it is CPU-bound.
    free = {"concurrency_limit": None}
    # Every Send listener shares one limit: upstream calls that spend, across all visitors.
    spend = {"concurrency_limit": access.concurrency, "concurrency_id": "send"}
    route_in = [w.session, w.policy, w.query, w.tolerance, w.models]
    w.route.click(on_route, route_in, decision_out, api_name="route", **free).success(
        on_send, send_in, answer_out, api_name="send", **spend)
    w.query.submit(on_route, route_in, decision_out, api_visibility="private", **free).success(
        on_send, send_in, answer_out, api_visibility="private", **spend)
    for btn, s in zip(w.sample_btns, samples):
        btn.click(lambda q=s["question"]: q, None, w.query, api_visibility="private", show_progress="hidden",
                  **free).then(on_route, route_in, decision_out, api_visibility="private", **free).success(
            on_send, send_in, answer_out, api_visibility="private", **spend)
    redecide_in = [w.session, w.policy, w.tolerance, w.models]
    for comp in (w.tolerance, w.models):
        comp.input(on_redecide, redecide_in, decision_out, trigger_mode="always_last", show_progress="hidden",
                   api_name="redecide", api_visibility="public" if comp is w.tolerance else "private", **free)
    w.policy.input(on_pool, [w.session, w.policy], [w.pool_info, w.tolerance, w.models], api_name="pool",
                   **free).then(on_route_current(registry), [w.session, w.policy, w.tolerance, w.models],
                                decision_out, api_visibility="private", **free)
    w.session_tab.select(on_tab, [w.session, w.policy], tab_out, api_name="session_view", **free)
    w.audit_tab.select(on_tab, [w.session, w.policy], tab_out, api_visibility="private", **free).then(
        on_export, [w.session], [w.download], api_name="export", **free)
    w.reset.click(on_reset, [w.session, w.policy], [w.session, w.stats, w.stats2, w.dist, w.audit], api_name="reset",
                  **free)
    w.run_sweep.click(on_sweep, [w.session, w.policy, w.models, w.sweep_file, w.t_start, w.t_stop, w.t_step],
                      [w.session, w.sweep_summary, w.sweep_mix, w.sweep_curve, w.sweep_table], api_name="sweep",
                      concurrency_limit=2)
    w.project.click(on_project, [w.session, w.policy, w.tolerance, w.models, w.team, w.per_person, w.avg_in,
                                 w.avg_out, w.mix_source], [w.session, w.proj_out, w.proj_chart], api_name="project",
                    **free)


def on_route_current(registry):
    """After a pool switch: route the query on screen again under the new pool (new scores needed)."""
    def handler(session, policy, tolerance, enabled):
        if not session.query:
            return gr.skip()
        router = registry.get(policy)
        result = _call(playground.route, router, session, session.query, tolerance, enabled)
        return _decision_outputs(session, router.pool, result)
    return handler


def _projection_mix(router, session, tolerance, enabled, samples, source):
    """The model mix a projection uses, and a sentence saying where it came from."""
    if source == "this session":
        st = costs.session_stats([r for r in session.records if r["policy"] == router.pool.policy])
        if not st.queries:
            raise playground.InputError("no queries routed with this pool in this session yet: route some first")
        return st.distribution, f"this session's {st.queries} routed queries"
    sw = session.sweep
    if sw is None or sw.names != router.pool.names:
        sw = session.sweep = playground.run_sweep(router, [s["question"] for s in samples],
                                                  costs.tolerance_grid(), enabled)
    return sw.mix_at(tolerance), f"the tolerance sweep's {sw.questions} questions at tolerance {tolerance:.2f}"
