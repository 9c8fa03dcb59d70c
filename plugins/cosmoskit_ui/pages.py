"""The pages (GET): Queue, Running, Runs (and one run, and a comparison), Prompts (and one prompt).

A page asked with the ``X-Fragment: live`` header sends only its live part, which ui.js swaps in
when the server says something changed: the rest of the page (forms being filled) stays put.
"""
from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from cosmoskit import api
from cosmoskit.api import CosmoskitError
from cosmoskit_ui import queries, views
from cosmoskit_ui.context import UiContext
from cosmoskit_ui.queries import RunFilter


def ctx_of(request: Request) -> UiContext:
    ctx: UiContext = request.app.state.ctx
    return ctx


def render(request: Request, template: str, status: int = 200, **data: Any) -> HTMLResponse:
    ctx = ctx_of(request)
    fragment = request.headers.get("x-fragment") == "live"
    name = f"_{template}" if fragment else template
    snap = data.pop("snap", None) or ctx.view.get()
    html = ctx.templates.get_template(name).render(
        request=request, csrf=ctx.guard.csrf, snap=snap, work=ctx.work, versions=dict(ctx.hub.versions),
        nav=template.split(".")[0], running=len(snap.active_batches), queued=len(snap.queued()), **data)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def error_page(request: Request, message: str, status: int = 404) -> HTMLResponse:
    return render(request, "error.html", status=status, message=message)


def home(request: Request) -> Response:
    return RedirectResponse("/queue", status_code=303)


def status(request: Request) -> JSONResponse:
    """The header's figures (queued, running, paused) and the change versions, for ui.js."""
    ctx = ctx_of(request)
    snap = ctx.view.get()
    return JSONResponse({"queued": len(snap.queued()), "running": len(snap.active_batches), "paused": snap.paused,
                         "versions": dict(ctx.hub.versions), "subscribers": ctx.hub.subscribers()},
                        headers={"Cache-Control": "no-store"})


def favicon(request: Request) -> Response:
    return Response(status_code=204)


# ---------------------------------------------------------------- queue
def queue(request: Request) -> HTMLResponse:
    ctx = ctx_of(request)
    snap = ctx.view.get()
    order = queries.queue_order(snap)
    page = queries.paginate(order, queries.to_int(request.query_params.get("page"), 1), queries.QUEUE_PER_PAGE)
    plans = ctx.planner.plans
    default = plans.default
    return render(request, "queue.html", snap=snap, page=page, plans=plans.views, plan=default,
                  estimates=default.estimates if default else {}, executors=ctx.settings.executor_names(),
                  default_executor=ctx.settings.get("default_executor"), link=lambda n: f"page={n}")


# ---------------------------------------------------------------- running
def running(request: Request) -> HTMLResponse:
    ctx = ctx_of(request)
    snap = ctx.view.get()
    hosts = ctx.hosts.views()
    batches = views.live_batches(snap, ctx.board)
    return render(request, "running.html", snap=snap, hosts=hosts, batches=batches,
                  worker_log=list(ctx.worker_log)[-40:], now=time.monotonic())


# ---------------------------------------------------------------- runs
def runs(request: Request) -> HTMLResponse:
    ctx = ctx_of(request)
    snap = ctx.view.get()
    f = RunFilter.from_query(request.query_params)
    page = queries.find_runs(snap, f)
    cards = [views.card(ctx.home, snap, r) for r in page.items]
    operations = sorted({r["operation"] for r in snap.runs}) or list(api.operation_names())
    return render(request, "runs.html", snap=snap, f=f, page=page, cards=cards, operations=operations,
                  statuses=api.RUN_STATUSES, prompt=snap.prompts.get(f.prompt) if f.prompt else None,
                  link=lambda n: f.query(page=n))


def run(request: Request) -> HTMLResponse:
    ctx = ctx_of(request)
    snap = ctx.view.get()
    try:
        with ctx.ledger.read() as tx:
            record = tx.get_run(request.path_params["run_id"])
            batch_id = record.get("batch_id")
            batch = tx.batch(batch_id) if batch_id else None
    except CosmoskitError as exc:
        return error_page(request, str(exc))
    live = ctx.board.get(batch["id"]) if batch else None
    detail = views.run_detail(ctx.home, snap, record, batch, live)
    return render(request, "run.html", snap=snap, d=detail)


def compare(request: Request) -> HTMLResponse:
    ctx = ctx_of(request)
    snap = ctx.view.get()
    refs = [r for v in request.query_params.getlist("ids") for r in v.split(",") if r.strip()]
    refs += request.query_params.getlist("id")
    chosen = []
    try:
        with ctx.ledger.read() as tx:
            ids = list(dict.fromkeys(tx.resolve_run(r.strip()) for r in refs))
    except CosmoskitError as exc:
        return error_page(request, str(exc))
    for rid in ids:
        record = snap.by_id.get(rid)
        if record is not None:
            chosen.append((views.card(ctx.home, snap, record), views.run_videos(ctx.home, record, rid)))
    keys = sorted({k for c, _ in chosen for k in (c.run.get("params") or {}) if k != "negative_prompt"})
    differing = {k for k in keys if len({repr((c.run.get("params") or {}).get(k)) for c, _ in chosen}) > 1}
    videos = [vids[-1] for _, vids in chosen if vids]  # each run's main output, in the order chosen
    return render(request, "compare.html", snap=snap, chosen=chosen, keys=keys, differing=differing, videos=videos)


# ---------------------------------------------------------------- prompts
def prompts(request: Request) -> HTMLResponse:
    ctx = ctx_of(request)
    snap = ctx.view.get()
    q = request.query_params.get("q") or ""
    page = queries.find_prompts(snap, q, queries.to_int(request.query_params.get("page"), 1))
    thumbs = {p["id"]: f"/media/prompt/{p['id']}/rgb/thumb.jpg" for p in page.items}
    return render(request, "prompts.html", snap=snap, q=q, page=page, thumbs=thumbs,
                  link=lambda n: urlencode({k: v for k, v in (("q", q), ("page", n)) if v}))


def prompt(request: Request) -> HTMLResponse:
    ctx = ctx_of(request)
    snap = ctx.view.get()
    try:
        with ctx.ledger.read() as tx:
            record = tx.get_prompt(request.path_params["prompt_id"])
    except CosmoskitError as exc:
        return error_page(request, str(exc))
    children = [p for p in snap.prompts.values() if p.get("parent_prompt") == record["id"]]
    parent = snap.prompts.get(record.get("parent_prompt") or "")
    recent = [views.card(ctx.home, snap, r) for r in snap.runs if r.get("prompt_id") == record["id"]][:12]
    engine = ctx.engine()
    try:
        defaults = dict(engine.operation("transfer").defaults)
    except CosmoskitError:
        defaults = {}
    finally:
        engine.close()
    weights = defaults.get("weights") or {"vis": 0.25, "edge": 0.25, "depth": 0.25, "seg": 0.25}
    return render(request, "prompt.html", snap=snap, p=record, inputs=views.prompt_inputs(ctx.home, record),
                  children=children, parent=parent, recent=recent, weights=weights, defaults=defaults,
                  total_runs=snap.run_counts.get(record["id"], 0))


def delete_prompts(request: Request) -> HTMLResponse:
    ctx = ctx_of(request)
    refs = [r for v in request.query_params.getlist("ids") for r in v.split(",") if r.strip()]
    if not refs:
        return error_page(request, "name the prompts to delete", 400)
    engine = ctx.engine()
    try:
        preview = engine.delete_preview(refs)
    except CosmoskitError as exc:
        return error_page(request, str(exc))
    finally:
        engine.close()
    snap = ctx.view.get()
    return render(request, "delete.html", snap=snap, preview=preview,
                  prompts=[snap.prompts[p] for p in preview.prompts if p in snap.prompts])
