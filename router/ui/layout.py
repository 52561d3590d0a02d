"""The Gradio playground: layout, then every listener wired in `_wire`; handlers stay thin.

Per-browser-session data lives in one `gr.State(Session())` (Gradio copies the initial value
for every visitor); the registry of routers is read-only and shared. `app.py` mounts the Blocks
returned by `build_ui` at "/" with `CSS_PATH` and `THEME` (Gradio 6 takes them at mount time).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from router.errors import RouterError
from router.paths import ASSETS_DIR
from router.routing import costs, sweep
from router.routing.registry import RouterRegistry
from router.ui import compare as cmp
from router.ui import explain, inputs, playground, pool_design
from router.ui import views as V
from router.ui.access import UIAccess, ui_access
from router.ui.charts import decision_figure, distribution_figure, projection_figure, sweep_figures
from router.ui.spend import audit_answer, audit_review
from router.ui.uploads import read_upload

CSS_PATH = str(ASSETS_DIR / "style.css")
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="emerald", neutral_hue="slate",
                       # Local font stacks only: the page must render offline (no Google Fonts request).
                       # Noto Sans CJK renders Japanese/Chinese queries and names (CI installs fonts-noto-cjk).
                       font=["Inter", "Noto Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "ui-sans-serif",
                             "system-ui", "sans-serif"],
                       font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"]).set(
    button_primary_background_fill="*primary_600", button_primary_background_fill_hover="*primary_700",
    button_primary_text_color="white")

# Gradio opens the sidebar on every screen; on a phone it would cover the page, so close it there.
NARROW_JS = """() => {
  if (window.innerWidth >= 900) return;
  let tries = 0;
  const close = () => {
    const sb = document.querySelector('#sidebar');
    const btn = sb && (sb.querySelector('.toggle-button') || sb.parentElement.querySelector('.toggle-button'));
    if (sb && btn) { if (sb.classList.contains('open')) btn.click(); return; }
    if (++tries < 100) setTimeout(close, 50);
  };
  close();
}"""

HEADER = """<div class='app-header'><h1>Prefill Router</h1>
<p>A small encoder reads your query, a trained head predicts every model's <b>P(correct)</b>, and the router
picks the <b>cheapest model within <i>tolerance</i> of the best</b>. Move the slider to trade quality for cost.</p></div>"""


def _call(fn, *args, **kwargs):
    """Run library code; its errors become a readable message in the page, never a stack trace."""
    try:
        return fn(*args, **kwargs)
    except RouterError as exc:
        raise gr.Error(str(exc), print_exception=False) from None


def build_ui(registry: RouterRegistry, governance=None, audit=None, access: UIAccess | None = None) -> gr.Blocks:
    """`governance`: the proxy's spend counters (router.serving.governance), so the playground's
    calls count against the same budgets and the Session tab shows them; None: no budgets here.
    `audit`: the server's AuditLog (Send and Auto review write their calls there); `access`:
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
            w.tolerance = inputs.Slider(0, 1, value=pool.default_tolerance, step=0.01, label="Tolerance",
                                    info="0 = best predicted model · 1 = cheapest", elem_id="tolerance")
            off = not access.send_enabled
            w.send = gr.Checkbox(False, label="Send to model", elem_id="send-toggle", interactive=not off,
                                 info=access.send_off_reason if off else "stream the answer from the chosen model")
            w.review = gr.Checkbox(False, label="Auto review", info="the pool's most expensive model judges the answer",
                                   elem_id="review-toggle", interactive=not off)
            w.models = inputs.PoolToggles(V.model_choices(pool), value=V.enabled_names(pool), label="Models (on/off)",
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
                w.budgets = gr.HTML(elem_id="budget-state")
            with gr.Tab("Tolerance sweep", id="sweep"):
                _sweep_tab(w, len(samples))
            with gr.Tab("Monthly projection", id="projection"):
                _projection_tab(w)
            with gr.Tab("Compare", id="compare"):
                _compare_tab(w, registry, len(samples))
            with gr.Tab("Pool design", id="design"):
                _design_tab(w, registry)
            with gr.Tab("Audit", id="audit") as w.audit_tab:
                gr.Markdown("This session's decisions, in the audit-log format of the proxy (one JSON object per line).")
                w.audit = gr.Dataframe(headers=V.AUDIT_HEADERS, interactive=False, wrap=True, elem_id="audit-table",
                                       column_widths=["9%", "17%", "5%", "13%", "8%", "8%", "10%", "10%", "10%", "10%"])
                w.download = gr.DownloadButton("Download JSONL", value=None, interactive=False, elem_id="download-btn",
                                               size="md")
        _wire(registry, w, samples, governance, audit, access)
        _wire_new(registry, w, samples)
    return demo


def _route_tab(w, samples) -> None:
    with gr.Row(equal_height=True):
        w.query = gr.Textbox(label="Query", lines=3, max_lines=12, scale=5, elem_id="query",
                             placeholder="Ask anything, or pick a sample below")
        w.route = gr.Button("Route", variant="primary", scale=1, elem_id="route-btn")
    with gr.Row(elem_classes=["samples"]):
        w.sample_btns = [gr.Button(s["label"], size="sm", elem_classes=["sample-btn"]) for s in samples]
    w.decision = gr.HTML("<div class='decision empty'>Route a query to see the decision.</div>", elem_id="decision-box")
    with gr.Row(equal_height=False, elem_id="chart-row"):
        w.chart = gr.Plot(show_label=False, elem_id="p-chart", scale=3, min_width=300)
        with gr.Column(scale=2, min_width=280):  # gr.HTML alone ignores scale: it took a third of the chart's width
            w.explain = gr.HTML(elem_id="explain-box")
    # Plain HTML, not a Dataframe: Gradio's table sizes its columns from the viewport and squeezes seven columns
    # into a phone's width; this one becomes one card per model there (assets/style.css).
    w.costs = gr.HTML(elem_id="cost-table")
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
                w.t_start = inputs.Number(0.0, label="From", minimum=0, maximum=1, step=0.05)
                w.t_stop = inputs.Number(0.5, label="To", minimum=0, maximum=1, step=0.05)
                w.t_step = inputs.Number(0.05, label="Step", minimum=0.01, maximum=1, step=0.01)
            w.run_sweep = gr.Button("Run sweep", variant="primary", elem_id="sweep-btn")
    w.sweep_summary = gr.HTML(elem_id="sweep-summary")
    w.sweep_mix = gr.Plot(show_label=False, elem_id="sweep-mix")
    w.sweep_curve = gr.Plot(show_label=False, elem_id="sweep-curve")
    w.sweep_table = gr.Dataframe(headers=V.SWEEP_HEADERS, interactive=False, elem_id="sweep-table")
    with gr.Accordion("Replay an audit log against this pool", open=False, elem_id="replay-box"):
        gr.Markdown("Re-score a proxy audit log (lines stored with `audit_query_text: store`) with this pool's "
                    "checkpoint: P is checked against the logged P for lines of the same checkpoint, and every "
                    "decision that changes is counted (logged → replayed) and priced. Same as "
                    "`python -m router audit replay`.")
        with gr.Row():
            w.replay_file = gr.File(label="Audit log (.jsonl)", file_types=[".jsonl"], type="filepath",
                                    elem_id="replay-file")
            with gr.Column():
                w.replay_tol = gr.Checkbox(False, label="Use the sidebar's tolerance (else each line's logged one)")
                w.run_replay = gr.Button("Replay", variant="primary", elem_id="replay-btn")
        w.replay_summary = gr.HTML(elem_id="replay-summary")
        w.replay_matrix = gr.Dataframe(interactive=False, elem_id="replay-matrix")
        w.replay_diff = gr.File(label="Differences (.jsonl)", interactive=False, elem_id="replay-diff")


def _projection_tab(w) -> None:
    gr.Markdown("Monthly spend if every request went to the baseline model, vs routed at the sidebar's tolerance.")
    with gr.Row():
        w.team = inputs.Number(50, label="Team size", minimum=0, precision=0)
        w.per_person = inputs.Number(600, label="Requests per person per month", minimum=0, precision=0)
        w.avg_in = inputs.Number(1500, label="Average input tokens", minimum=0, precision=0)
        w.avg_out = inputs.Number(600, label="Average output tokens", minimum=0, precision=0)
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


def _decision_outputs(session, pool, result, window=None):
    # Only what the Route tab shows: the other tabs refresh when opened, which keeps slider moves light.
    return (session, V.decision_html(result, window), decision_figure(result), V.cost_table_html(result),
            V.stats_for(session.records, pool)[1], explain.explain_html(result, window))


def _router(registry: RouterRegistry, session, policy):
    """The pool a handler works with: this session's design when one was started from `policy`."""
    if session.design is not None and policy in (session.design_base, session.design.policy):
        return pool_design.router_for(registry.get(session.design_base), session.design)
    return registry.get(policy)


def _outs(session, router, result):
    return _decision_outputs(session, router.pool, result, explain.text_window(router, result.input_tokens))


def _wire(registry: RouterRegistry, w, samples, governance=None, audit=None, access: UIAccess | None = None) -> None:
    access = access or ui_access()
    decision_out = [w.session, w.decision, w.chart, w.costs, w.stats, w.explain]
    answer_out = [w.session, w.answer_meta, w.answer, w.review_out, w.stats]
    tab_out = [w.stats2, w.dist, w.audit]
    send_in = [w.session, w.send, w.review]

    def on_route(session, policy, query, tolerance, enabled):
        router = _router(registry, session, policy)
        result = _call(playground.route, router, session, query, tolerance, enabled, governance)
        return _outs(session, router, result)

    def on_redecide(session, policy, tolerance, enabled):
        router = _router(registry, session, policy)
        if not enabled and session.scores is not None:
            # The screen must not keep showing a choice among models that are all switched off.
            session.result = None
            return (session, V.no_decision_html("no model is enabled: switch on at least one model of the pool"),
                    None, "", V.stats_for(session.records, router.pool)[1], "")
        result = _call(playground.redecide, router, session, tolerance, enabled)
        return _outs(session, router, result) if result else gr.skip()

    def on_pool(session, policy):
        pool = _router(registry, session, policy).pool
        return (V.pool_html(pool), gr.update(value=pool.default_tolerance),
                gr.update(choices=V.model_choices(pool), value=V.enabled_names(pool)))

    async def on_send(session, send_on, review_on, request: gr.Request = None):
        if not (send_on and session.result is not None):
            yield gr.skip()
            return
        if not access.send_enabled:
            raise gr.Error(access.send_off_reason, print_exception=False)
        from router.upstream.client import upstream_client

        router = _router(registry, session, session.policy)
        own = [str(request.url)] if request is not None and getattr(request, "url", None) else []
        async with upstream_client() as client:
            try:
                async for ans in playground.send(router, session, client, governance=governance,
                                                 max_tokens=access.max_tokens):
                    yield session, V.answer_html(ans), ans.text, "", gr.skip()
            except RouterError as exc:  # e.g. a cloud slot for a query that must stay on-prem
                raise gr.Error(str(exc), print_exception=False) from None
            audit_answer(audit, ans.record)
            rv = (await playground.review_answer(router, session, client, ans, own_urls=own,
                                                 max_tokens=min(300, access.max_tokens)) if review_on else None)
            audit_review(audit, router, ans.request_id, rv)
        yield session, V.answer_html(ans), ans.text, V.review_html(rv), V.stats_for(session.records, router.pool)[1]

    def on_tab(session, policy):
        return _session_outputs(session, _router(registry, session, policy).pool)

    def on_budgets(policy):
        return V.budgets_html(registry.get(policy).pool, governance)

    def on_reset(session, policy):
        session.reset()
        html, dist, audit = _session_outputs(session, _router(registry, session, policy).pool)
        return session, html, html, dist, audit

    # upload=None: the API lists the upload as optional (Gradio reads the default), as it is on the page.
    def on_sweep(session, policy, enabled, upload=None, start=0.0, stop=0.5, step=0.05,
                 progress=gr.Progress(track_tqdm=True)):
        router = _router(registry, session, policy)
        texts = (_call(read_upload, playground.load_questions, upload) if upload
                 else [s["question"] for s in samples])
        grid = _call(sweep.tolerance_grid, start, stop, step)
        sw = session.sweep = _call(playground.run_sweep, router, texts, grid, enabled)
        session.sweep_texts = texts
        return (session,) + _sweep_outputs(router, sw)

    def on_replay(policy, upload, use_tolerance, tolerance, progress=gr.Progress(track_tqdm=True)):
        from router.ui import replay_view

        router = _call(registry.get, policy)
        tol = tolerance if use_tolerance else None
        report, diff = (_call(read_upload, lambda path: replay_view.run(router, path, tol), upload) if upload
                        else _call(replay_view.run, router, upload, tol))
        headers, rows = replay_view.matrix_table(report, V.labels_of(router.pool))
        return replay_view.summary_html(report), {"headers": headers, "data": rows}, diff

    def on_project(session, policy, tolerance, enabled, team, per_person, avg_in, avg_out, source):
        router = _router(registry, session, policy)
        return (session,) + _projection_outputs(router, session, tolerance, enabled, samples,
                                                team, per_person, avg_in, avg_out, source)

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
                   **free).then(on_route_current(registry, governance), [w.session, w.policy, w.tolerance, w.models],
                                decision_out, api_visibility="private", **free)
    w.session_tab.select(on_tab, [w.session, w.policy], tab_out, api_name="session_view", **free)
    w.session_tab.select(on_budgets, [w.policy], [w.budgets], api_name="budgets_view", **free)
    w.audit_tab.select(on_tab, [w.session, w.policy], tab_out, api_visibility="private", **free).then(
        on_export, [w.session], [w.download], api_name="export", **free)
    w.reset.click(on_reset, [w.session, w.policy], [w.session, w.stats, w.stats2, w.dist, w.audit], api_name="reset",
                  **free)
    w.run_sweep.click(on_sweep, [w.session, w.policy, w.models, w.sweep_file, w.t_start, w.t_stop, w.t_step],
                      [w.session, w.sweep_summary, w.sweep_mix, w.sweep_curve, w.sweep_table], api_name="sweep",
                      concurrency_limit=2, show_progress_on=[w.sweep_summary])
    w.run_replay.click(on_replay, [w.policy, w.replay_file, w.replay_tol, w.tolerance],
                       [w.replay_summary, w.replay_matrix, w.replay_diff], api_name="replay", concurrency_limit=2)
    w.project.click(on_project, [w.session, w.policy, w.tolerance, w.models, w.team, w.per_person, w.avg_in,
                                 w.avg_out, w.mix_source], [w.session, w.proj_out, w.proj_chart], api_name="project",
                    **free)


def on_route_current(registry, governance=None):
    """After a pool switch: route the query on screen again under the new pool (new scores needed)."""
    def handler(session, policy, tolerance, enabled):
        if not session.query:
            return gr.skip()
        router = _router(registry, session, policy)
        result = _call(playground.route, router, session, session.query, tolerance, enabled, governance)
        return _outs(session, router, result)
    return handler


SMALL_SAMPLE = 20  # session queries under which a projection from the session mix says it is a guess


def _projection_mix(router, session, tolerance, enabled, samples, source):
    """The model mix a projection uses, and a sentence saying where it came from."""
    if source == "this session":
        st = costs.session_stats([r for r in session.records if r["policy"] == router.pool.policy])
        if not st.queries:
            raise playground.InputError("no queries routed with this pool in this session yet: route some first")
        small = (f" (a small sample: with fewer than {SMALL_SAMPLE} queries the mix, and so this projection, "
                 f"can change a lot with the next one)") if st.queries < SMALL_SAMPLE else ""
        return st.distribution, f"this session's {st.queries} routed quer{'y' if st.queries == 1 else 'ies'}{small}"
    sw = session.sweep
    if sw is None or sw.names != router.pool.names:
        sw = session.sweep = playground.run_sweep(router, [s["question"] for s in samples],
                                                  sweep.tolerance_grid(), enabled)
    return sw.mix_at(tolerance), f"the tolerance sweep's {sw.questions} questions at tolerance {tolerance:.2f}"


# ---- issue 15: compare, pool design, the data API ---------------------------------------------

def _compare_tab(w, registry: RouterRegistry, n_samples: int) -> None:
    gr.Markdown(f"Route one question set under several settings side by side: pools × tolerances, each against "
                f"its pool's baseline. Without an upload, the {n_samples} sample questions are used.")
    article = [p for p in cmp.ARTICLE_POOLS if p in registry.policies] or registry.policies[:1]
    with gr.Row():
        w.cmp_pools = gr.CheckboxGroup(registry.policies, value=article, label="Pools", elem_id="cmp-pools")
        w.cmp_tols = gr.Textbox("0.05, 0.10, 0.20", label="Tolerances (comma-separated)", elem_id="cmp-tols")
        w.cmp_file = gr.File(label="Questions (.txt or .jsonl; optional)", file_types=[".txt", ".jsonl"],
                             type="filepath", elem_id="cmp-file")
    with gr.Row():
        w.cmp_run = gr.Button("Compare", variant="primary", elem_id="cmp-btn")
        w.cmp_article = gr.Button("The article's comparison: all-Opus vs 0.05 / 0.10 / 0.20, default vs mixed-local",
                                  variant="secondary", elem_id="cmp-article-btn")
    w.cmp_out = gr.HTML(elem_id="compare-box")
    w.cmp_chart = gr.Plot(show_label=False, elem_id="compare-chart")


def _design_tab(w, registry: RouterRegistry) -> None:
    router = registry.get()
    gr.Markdown("Change a slot's prices, destination or `trained_as` binding, or add a slot that borrows an existing "
                "label column. *Apply* re-decides the query on screen, re-runs the sweep and the monthly projection "
                "with the design. The design lives in this browser session only; download it as a pool YAML "
                "(checked by the same loader as `configs/`).")
    with gr.Row():
        w.d_slot = gr.Dropdown(router.pool.names + [pool_design.NEW_SLOT], value=router.pool.names[0], label="Slot",
                               elem_id="design-slot")
        w.d_name = gr.Textbox(router.pool.names[0], label="Slot name", elem_id="design-name")
        w.d_display = gr.Textbox(router.pool.models[0].label, label="Display name", elem_id="design-display")
    with gr.Row():
        w.d_model = gr.Textbox(router.pool.models[0].model, label="Destination model id", elem_id="design-model")
        w.d_base = gr.Textbox(router.pool.models[0].api_base, label="api_base", elem_id="design-base")
    with gr.Row():
        w.d_in = inputs.Number(router.pool.models[0].cost_per_m_input_tokens, label="$ per M input tokens", minimum=0,
                           elem_id="design-in")
        w.d_out = inputs.Number(router.pool.models[0].cost_per_m_output_tokens, label="$ per M output tokens", minimum=0,
                            elem_id="design-out")
        w.d_trained = gr.Dropdown(router.checkpoint.slots, value=router.pool.models[0].score_as,
                                  label="Scored as (trained_as: a label column of the checkpoint)",
                                  elem_id="design-trained", scale=2)  # the column ids are long
        w.d_enabled = gr.Checkbox(router.pool.models[0].enabled, label="On", elem_id="design-enabled")
    with gr.Row():
        w.d_apply = gr.Button("Apply", variant="primary", elem_id="design-apply")
        w.d_discard = gr.Button("Discard design", variant="secondary", elem_id="design-discard")
    w.d_status = gr.HTML(elem_id="design-status")
    w.d_table = gr.Dataframe(headers=pool_design.HEADERS, value=pool_design.rows(router.pool), interactive=False,
                             wrap=True, elem_id="design-table",
                             column_widths=["14%", "14%", "17%", "17%", "7%", "7%", "18%", "6%"])


def _sweep_outputs(router, sw) -> tuple:
    labels, base = V.labels_of(router.pool), router.pool.baseline_slot.label
    mix, curve = sweep_figures(sw, labels, base)
    summary = (f"<p class='basis' id='sweep-done' data-policy='{router.pool.policy}'>{sw.questions} questions × "
               f"{len(sw.tolerances)} tolerances · pool {router.pool.policy} · estimated costs.</p>")
    return summary, mix, curve, V.sweep_rows(sw, labels)


def _projection_outputs(router, session, tolerance, enabled, samples, team, per_person, avg_in, avg_out, source):
    mix, source_text = _call(_projection_mix, router, session, tolerance, enabled, samples, source)
    pool, base = router.pool, router.pool.baseline_slot
    proj = _call(costs.monthly_projection, team, per_person, avg_in, avg_out, mix, costs.slot_prices(pool.models),
                 base.name)
    return (V.projection_html(proj, source_text, base.label),
            projection_figure(proj, V.labels_of(pool), base.label))


def _wire_new(registry: RouterRegistry, w, samples) -> None:
    free = {"concurrency_limit": None}
    sample_texts = [s["question"] for s in samples]

    def on_compare(session, pools, tols, upload, progress=gr.Progress(track_tqdm=True)):
        texts = _call(read_upload, playground.load_questions, upload) if upload else sample_texts
        grid = _call(cmp.parse_tolerances, tols or "")
        if not pools:
            raise gr.Error("pick at least one pool to compare", print_exception=False)
        routers = [registry.get(p) for p in pools]
        if session.design is not None and session.design_base in pools:
            routers.insert(pools.index(session.design_base) + 1, _router(registry, session, session.design_base))
        rows = _call(cmp.compare, routers, texts, grid)
        source = f"file {Path(upload).name}" if upload else "the sample set"
        return cmp.compare_html(rows, source), cmp.compare_figure(rows)

    cmp_in = [w.session, w.cmp_pools, w.cmp_tols, w.cmp_file]
    cmp_out = [w.cmp_out, w.cmp_chart]
    w.cmp_run.click(on_compare, cmp_in, cmp_out, api_name="compare", concurrency_limit=2,
                    show_progress_on=[w.cmp_out])
    article_pools = [p for p in cmp.ARTICLE_POOLS if p in registry.policies]
    w.cmp_article.click(lambda: (article_pools, ", ".join(f"{t:.2f}" for t in cmp.ARTICLE_TOLERANCES)), None,
                        [w.cmp_pools, w.cmp_tols], api_visibility="private", show_progress="hidden", **free).then(
        on_compare, cmp_in, cmp_out, api_visibility="private", concurrency_limit=2, show_progress_on=[w.cmp_out])

    # ---- pool design
    def slot_fields(pool, ckpt_slots, name):
        if name == pool_design.NEW_SLOT or name not in pool.names:
            first = pool.models[0]
            return ("", "", "", first.api_base, 0.0, 0.0, gr.update(choices=ckpt_slots, value=ckpt_slots[0]), True)
        s = pool.slot(name)
        return (s.name, s.label, s.model, s.api_base, s.cost_per_m_input_tokens, s.cost_per_m_output_tokens,
                gr.update(choices=ckpt_slots, value=s.score_as), s.enabled)

    field_out = [w.d_name, w.d_display, w.d_model, w.d_base, w.d_in, w.d_out, w.d_trained, w.d_enabled]

    def on_design_slot(session, policy, name):
        router = _router(registry, session, policy)
        return slot_fields(router.pool, router.checkpoint.slots, name)

    def on_design_pool(session, policy):
        router = _router(registry, session, policy)
        first = router.pool.names[0]
        return (gr.update(choices=router.pool.names + [pool_design.NEW_SLOT], value=first),
                *slot_fields(router.pool, router.checkpoint.slots, first), pool_design.rows(router.pool),
                _design_status(session, router))

    def refresh(session, policy, tolerance, team, per_person, avg_in, avg_out, source, note):
        """Everything the design changes, at once: decision, sweep, projection, sidebar and the design view."""
        router = _router(registry, session, policy)
        pool = router.pool
        if session.query:
            result = _call(playground.route, router, session, session.query, tolerance, None)
            dec = _outs(session, router, result)[1:]
        else:
            dec = (gr.skip(),) * 5
        texts = session.sweep_texts or sample_texts
        grid = session.sweep.tolerances if session.sweep is not None else sweep.tolerance_grid()
        sw = session.sweep = _call(playground.run_sweep, router, texts, grid, None)
        swept = _sweep_outputs(router, sw)
        proj = _projection_outputs(router, session, tolerance, None, samples, team, per_person, avg_in, avg_out,
                                   source)
        status = _design_status(session, router, note, sw.mix_at(tolerance), proj[0])
        return (session, status, pool_design.rows(pool),
                gr.update(choices=pool.names + [pool_design.NEW_SLOT]), V.pool_html(pool),
                gr.update(choices=V.model_choices(pool), value=V.enabled_names(pool)),
                *dec, *swept, *proj)

    def on_design_apply(session, policy, tolerance, slot, name, display, model, api_base, cin, cout, trained, on,
                        team, per_person, avg_in, avg_out, source):
        base = registry.get(policy if session.design is None or policy != session.design.policy
                            else session.design_base)
        design = (session.design if session.design is not None and session.design_base == base.pool.policy
                  else pool_design.start(base.pool))
        new = _call(pool_design.edit_slot, design, slot, base.checkpoint.slots, name=name, display_name=display,
                    model=model, api_base=api_base, cost_in=cin, cost_out=cout, trained_as=trained, enabled=on)
        session.design, session.design_base = new, base.pool.policy
        label = name if slot == pool_design.NEW_SLOT else slot
        return refresh(session, base.pool.policy, tolerance, team, per_person, avg_in, avg_out, source,
                       f"applied: slot {label}")

    def on_design_discard(session, policy, tolerance, team, per_person, avg_in, avg_out, source):
        base = session.design_base or policy
        session.design, session.design_base = None, None
        return refresh(session, base, tolerance, team, per_person, avg_in, avg_out, source, "design discarded")

    proj_in = [w.team, w.per_person, w.avg_in, w.avg_out, w.mix_source]
    design_out = ([w.session, w.d_status, w.d_table, w.d_slot, w.pool_info, w.models, w.decision, w.chart, w.costs,
                   w.stats, w.explain, w.sweep_summary, w.sweep_mix, w.sweep_curve, w.sweep_table, w.proj_out,
                   w.proj_chart])
    w.d_slot.input(on_design_slot, [w.session, w.policy, w.d_slot], field_out, api_visibility="private", **free)
    w.policy.input(on_design_pool, [w.session, w.policy], [w.d_slot, *field_out, w.d_table, w.d_status],
                   api_visibility="private", **free)
    w.d_apply.click(on_design_apply, [w.session, w.policy, w.tolerance, w.d_slot, *field_out, *proj_in], design_out,
                    api_name="design_apply", concurrency_limit=2, show_progress_on=[w.d_status])
    w.d_discard.click(on_design_discard, [w.session, w.policy, w.tolerance, *proj_in], design_out,
                      api_name="design_discard", concurrency_limit=2, show_progress_on=[w.d_status])

    # ---- the data API: the decision itself, not its HTML
    def decide(query: str, policy: str | None = None, tolerance: float | None = None,
               models: list[str] | None = None) -> dict:
        """Route one query and return the RoutingResult as JSON (chosen slot, p_max, threshold, candidates, every
        model's P(correct) and expected cost, input tokens, timings). policy: a pool name (default pool when
        empty); tolerance: 0..1 (the pool's default when empty); models: slot names to allow (all enabled when
        empty). Stateless: no session, no audit record."""
        router = _call(registry.get, policy or None)
        return _call(router.route, query, tolerance, list(models) if models else None).to_dict()

    gr.api(decide, api_name="decide", **free)


def _design_status(session, router, note: str = "", mix=None, projection_html: str = "") -> str:
    from html import escape

    if session.design is None or router.pool.policy != session.design.policy:
        return ("<div class='design-status' id='design-state' data-active='0'>No design yet: pick a slot, change it, "
                "press <b>Apply</b>.</div>")
    pool = router.pool
    parts = [f"<b>{escape(pool.policy)}</b> ({len(pool.models)} slots, baseline {escape(pool.baseline_slot.label)}) "
             f"· valid pool · {escape(note)}"]
    if session.result is not None and session.result.policy == pool.policy:
        parts.append(f"decision now: <b id='design-chosen'>{escape(pool.slot(session.result.chosen).label)}</b>")
    if mix:
        labels = V.labels_of(pool)
        top = ", ".join(f"{escape(labels.get(k, k))} {v}" for k, v in sorted(mix.items(), key=lambda kv: -kv[1])[:3])
        parts.append(f"sweep mix at the sidebar's tolerance: {top}")
    return (f"<div class='design-status' id='design-state' data-active='1' data-slots='{len(pool.models)}'>"
            f"{' · '.join(parts)}<br>{pool_design.download_html(pool)}{projection_html}</div>")
