"""The actions (POST): each checks the CSRF token, calls the engine, and answers in one line.

Every change goes through ``api.Engine`` (or, for a new prompt, the same calls ``prompt create``
makes), so the command line sees it at once.  An answer is JSON for ui.js (``ok``, ``message`` or
``error``, maybe ``redirect``); a plain form post without JavaScript is sent back where it came from.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from cosmoskit.api import CosmoskitError
from cosmoskit_ui import engineops, promptmake, sweep
from cosmoskit_ui.context import UiContext
from cosmoskit_ui.pages import ctx_of
from cosmoskit_ui.security import CSRF_FIELD, CSRF_HEADER

MAX_FIELDS = 5000


@dataclass(frozen=True)
class Done:
    message: str
    redirect: str | None = None
    data: dict[str, Any] | None = None


Handler = Callable[[UiContext, FormData, dict[str, Any]], Done]


def ids_of(form: FormData, name: str = "ids") -> list[str]:
    refs = [r.strip() for v in form.getlist(name) for r in str(v).split(",") if r.strip()]
    if not refs:
        raise CosmoskitError("select at least one run")
    return list(dict.fromkeys(refs))


def action(handler: Handler, *, upload: bool = False) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        ctx = ctx_of(request)
        try:
            form = await request.form(max_files=promptmake.MAX_UPLOAD_FILES if upload else 0,
                                      max_fields=MAX_FIELDS)
        except Exception as exc:  # a malformed body or too many parts
            return _answer(request, None, f"could not read the form: {exc}", 400)
        try:
            token = request.headers.get(CSRF_HEADER)
            field = form.get(CSRF_FIELD)
            if not ctx.guard.csrf_ok(request.method, token, field if isinstance(field, str) else None,
                                     request.headers.get("origin"), request.headers.get("host")):
                return _answer(request, None, "refused: the page's CSRF token is missing or stale; reload the page",
                               403)
            try:
                done = await run_in_threadpool(handler, ctx, form, dict(request.path_params))
            except CosmoskitError as exc:
                text = str(exc) + (f" ({exc.hint})" if getattr(exc, "hint", None) else "")
                return _answer(request, None, text, 400)
            return _answer(request, done, None, 200)
        finally:
            await form.close()

    return endpoint


def _answer(request: Request, done: Done | None, error: str | None, status: int) -> Response:
    if request.headers.get("x-requested-with") == "fetch":
        body: dict[str, Any] = {"ok": error is None}
        if error is not None:
            body["error"] = error
        if done is not None:
            body["message"] = done.message
            if done.redirect:
                body["redirect"] = done.redirect
            if done.data is not None:
                body.update(done.data)
        return JSONResponse(body, status_code=status)
    if error is not None:
        return JSONResponse({"ok": False, "error": error}, status_code=status)
    back = (done.redirect if done else None) or _same_site(request.headers.get("referer")) or "/"
    return RedirectResponse(back, status_code=303)


def _same_site(referer: str | None) -> str | None:
    if not referer:
        return None
    parts = urlsplit(referer)
    return parts.path + (f"?{parts.query}" if parts.query else "") if parts.path.startswith("/") else None


# ---------------------------------------------------------------- the queue
def pause(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    engine = ctx.engine()
    try:
        engine.pause()
    finally:
        engine.close()
    return Done("Queue paused: workers finish what runs and claim nothing new.")


def resume(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    engine = ctx.engine()
    try:
        engine.resume()
    finally:
        engine.close()
    return Done("Queue resumed.")


def cancel(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    targets = [path["batch_id"]] if "batch_id" in path else ids_of(form)
    engine = ctx.engine()
    said = []
    try:
        for target in targets:
            result = engine.cancel(target)
            what = result["id"]
            said.append(f"{what}: {'stop requested' if result.get('stopping') else 'cancelled'}")
    finally:
        engine.close()
    return Done("; ".join(said))


def retry(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    engine = ctx.engine()
    try:
        done = engine.retry(ids_of(form))
    finally:
        engine.close()
    return Done(f"Requeued {', '.join(r['id'] for r in done)}.")


def priority(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    raw = str(form.get("priority") or "").strip()
    try:
        value = int(raw)
    except ValueError:
        raise CosmoskitError(f"priority {raw!r} is not a whole number") from None
    engine = ctx.engine()
    try:
        done = engine.set_priority(ids_of(form), value)
    finally:
        engine.close()
    return Done(f"Priority {value} for {len(done)} run(s).")


def launch(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    """Launch selected queued runs now as one batch, then follow it on a thread (as `worker` would)."""
    run_ids = ids_of(form)
    executor = str(form.get("executor") or "") or None
    engine = ctx.engine()
    try:
        with ctx.ledger.read() as tx:
            run_ids = [tx.resolve_run(r) for r in run_ids]
        batch = engine.launch(run_ids, executor=executor, max_attempts=int(ctx.settings.get("worker.max_attempts")))
    except BaseException:
        engine.close()
        raise

    def follow() -> None:
        try:
            engine.follow(batch["id"], stop=ctx.stop)
        finally:
            engine.close()

    ctx.in_background(f"follow {batch['id']}", follow)
    ctx.note(f"launched batch {batch['id']} ({len(batch['runs'])} runs) on {batch['executor']} from the browser")
    return Done(f"Launched batch {batch['id']} with {len(batch['runs'])} run(s) on {batch['executor']}.")


def refresh_hosts(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    ctx.hosts.refresh()
    return Done("Asking every host again.")


# ---------------------------------------------------------------- runs
def rate(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    raw = str(form.get("stars") or "").strip()
    note = form.get("note")
    stars: int | None = None
    clear = raw == "0"
    if raw and not clear:
        try:
            stars = int(raw)
        except ValueError:
            raise CosmoskitError(f"a rating is 1 to 5, not {raw!r}") from None
    engine = ctx.engine()
    try:
        run = engine.rate(path["run_id"], stars=stars, note=str(note) if isinstance(note, str) else None,
                          clear_rating=clear)
    finally:
        engine.close()
    rating = run.get("rating")
    return Done(f"{run['id']}: " + (f"rated {rating}/5" if rating else "not rated") + ", note saved.",
                data={"rating": rating, "note": run.get("note")})


# ---------------------------------------------------------------- prompts
def create_prompt(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    folder = str(form.get("folder") or "").strip()
    if not folder:
        raise CosmoskitError("give the folder (or mp4) the prompt's videos or frames are in")
    made = promptmake.from_folder(ctx.settings, ctx.ledger, api_path(folder), str(form.get("text") or ""),
                                  name=str(form.get("name") or "").strip() or None,
                                  negative=str(form.get("negative") or "").strip() or None)
    return _made(made)


def upload_prompt(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    files = [(f.filename or "", f.file) for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    folder = promptmake.upload_folder(ctx.home, files)
    made = promptmake.from_folder(ctx.settings, ctx.ledger, folder, str(form.get("text") or ""),
                                  name=str(form.get("name") or "").strip() or None,
                                  negative=str(form.get("negative") or "").strip() or None)
    return _made(made)


def api_path(text: str) -> Any:
    from pathlib import Path

    return Path(text)


def _made(made: promptmake.Made) -> Done:
    p = made.prompt
    how = " (frames encoded by prepare)" if made.prepared else ""
    return Done(f"Created prompt {p['id']} {p['name']}{how}.", redirect=f"/prompts/{p['id']}",
                data={"prompt": p["id"]})


def _sweep_runs(ctx: UiContext, form: FormData, prompt_ref: str) -> tuple[Any, sweep.Sweep, list[Any], Any]:
    plan = sweep.parse(form)
    engine = ctx.engine()
    try:
        with ctx.ledger.read() as tx:
            prompt = tx.get_prompt(prompt_ref)
        docs = engine.new_runs("transfer", [prompt["id"]], plan.params, priority=plan.priority,
                               variations=plan.variations)
    except BaseException:
        engine.close()
        raise
    return engine, plan, docs, prompt


def estimate(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    engine, plan, docs, prompt = _sweep_runs(ctx, form, path["prompt_id"])
    try:
        strategy = str(ctx.settings.get("batching.strategy"))
        view = engineops.plan_runs(engine, docs, {prompt["id"]: prompt}, strategy)
    finally:
        engine.close()
    text = (f"{plan.count} run(s) in {len(view.batches)} batch(es): about {_dur(view.gpu_seconds)} of GPU time "
            f"({_dur(view.alone_seconds)} one at a time, speed-up {view.speedup:.2f}x)")
    return Done(text, data={"runs": plan.count, "batches": len(view.batches), "gpu_seconds": view.gpu_seconds,
                            "speedup": view.speedup})


def transfer(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    engine, plan, _docs, prompt = _sweep_runs(ctx, form, path["prompt_id"])
    try:
        sub = engine.submit("transfer", [prompt["id"]], plan.params, variations=plan.variations, mode="queue",
                            priority=plan.priority)
    finally:
        engine.close()
    return Done(f"Queued {len(sub.runs)} transfer run(s) of {prompt['name']}.", redirect="/queue",
                data={"runs": [r["id"] for r in sub.runs]})


def enhance(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    engine = ctx.engine()
    try:
        sub = engine.submit("enhance", [path["prompt_id"]], {"overwrite": False}, mode="queue")
    finally:
        engine.close()
    return Done(f"Queued enhance run {sub.runs[0]['id']}.", data={"runs": [r["id"] for r in sub.runs]})


def delete_prompts(ctx: UiContext, form: FormData, path: dict[str, Any]) -> Done:
    refs = [r.strip() for v in form.getlist("ids") for r in str(v).split(",") if r.strip()]
    if not refs:
        raise CosmoskitError("name the prompts to delete")
    engine = ctx.engine()
    try:
        preview = engine.delete_preview(refs)
        if sorted(preview.runs) != sorted(r for v in form.getlist("runs") for r in str(v).split(",") if r):
            raise CosmoskitError("the prompts' runs changed since the preview; look at it again",
                                 hint="reload the page")
        engine.delete_prompts(preview, delete_outputs=form.get("delete_outputs") == "1")
    finally:
        engine.close()
    return Done(f"Deleted {len(preview.prompts)} prompt(s) and {len(preview.runs)} run(s).", redirect="/prompts")


def _dur(seconds: float) -> str:
    from cosmoskit_ui.render import duration

    return duration(seconds)
