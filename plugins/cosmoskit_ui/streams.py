"""Streams and files: the change feed, a batch's log, files of the home (with range requests), previews."""
from __future__ import annotations

from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse

from cosmoskit_ui import views
from cosmoskit_ui.files import Refused, servable
from cosmoskit_ui.pages import ctx_of

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


async def events(request: Request) -> Response:
    """The change feed every page listens to (``hello`` with versions, then ``ledger``, ``plan``, ``progress``,
    ``hosts``)."""
    return StreamingResponse(ctx_of(request).hub.stream(), media_type="text/event-stream", headers=SSE_HEADERS)


async def batch_log(request: Request) -> Response:
    """A running batch's log: the last lines, then each new line as it is read from its host."""
    ctx = ctx_of(request)
    log = await run_in_threadpool(ctx.board.ensure, request.path_params["batch_id"])
    if log is None:
        return PlainTextResponse("no live log for that batch (it is not running)", status_code=404)
    return StreamingResponse(log.stream(), media_type="text/event-stream", headers=SSE_HEADERS)


def _file(path: Path) -> Response:
    # FileResponse answers Range requests (206), so a video seeks without downloading it whole
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


def home_file(request: Request) -> Response:
    ctx = ctx_of(request)
    try:
        path = servable(ctx.home, request.path_params["rel"])
    except Refused:
        return PlainTextResponse("not found", status_code=404)
    return _file(path)


async def media(request: Request) -> Response:
    """A thumbnail, contact sheet or preview of a run's output or a prompt's input, made on first request."""
    ctx = ctx_of(request)
    kind, record_id, rest = request.path_params["kind"], request.path_params["record_id"], request.path_params["rest"]
    parts = rest.split("/")
    name = parts[-1]
    what = Path(name).stem  # thumb, sheet, preview
    snap = await run_in_threadpool(ctx.view.get)  # the cached snapshot: a page of thumbnails reads no ledger
    src: Path | None = None
    key = ""
    if kind == "run" and record_id in snap.by_id:
        run = snap.by_id[record_id]
        outputs = run.get("outputs") or {}
        output = outputs.get(parts[0]) if len(parts) == 2 else views.main_output(run)
        src = ctx.home / output if output else None
        key = f"runs/{record_id}/{parts[0] if len(parts) == 2 else 'main'}"
    elif kind == "prompt" and len(parts) == 2 and record_id in snap.prompts:
        record = snap.prompts[record_id]["inputs"].get(parts[0])
        src = Path(record["path"]) if record else None
        key = f"prompts/{record_id}/{parts[0]}"
    if src is None or not src.is_file():
        return PlainTextResponse("no such video", status_code=404)
    made = await run_in_threadpool(ctx.thumbs.file, key, src, what)
    if made is None:
        return PlainTextResponse("no preview could be made", status_code=404)
    # a run's output does not change once it completed; an input that changes gets a new key in the cache
    return FileResponse(made, headers={"Cache-Control": "private, max-age=600"})
