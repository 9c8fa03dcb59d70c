"""The ASGI application: routes, static files, and the guard in front of all of them."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cosmoskit_ui import actions, pages, streams
from cosmoskit_ui.context import UiContext
from cosmoskit_ui.render import STATIC
from cosmoskit_ui.security import TOKEN_COOKIE, Guard

# what the pages may load: only this server (no CDN, works offline), nothing framed, no inline script
CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self'; script-src 'self'; style-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),  # the token never leaves in a Referer
]


class GuardMiddleware:
    """Host check, token check (non-loopback binds) and security headers on every response."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not self.guard.host_allowed(headers.get("host")):
            await PlainTextResponse("refused: this server answers only to its own address", 400)(scope, receive, send)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        cookies = _cookies(headers.get("cookie"))
        if not self.guard.token_ok(query.get("token"), cookies.get(TOKEN_COOKIE), headers.get("authorization")):
            await PlainTextResponse("refused: this server needs its token; open the URL `cosmoskit ui` printed",
                                    403)(scope, receive, send)
            return
        if self.guard.token and query.get("token") and scope["method"] == "GET":
            # the token becomes a cookie and leaves the address bar (and the history)
            rest = urlencode([(k, v) for k, v in parse_qsl(scope["query_string"].decode("latin-1"))
                              if k != "token"])
            response = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(TOKEN_COOKIE, self.guard.token, httponly=True, samesite="strict", path="/")
            await response(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, secured)


def _cookies(header: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def routes() -> list[Any]:
    a = actions.action
    return [
        Route("/", pages.home),
        Route("/favicon.ico", pages.favicon),
        Route("/api/status", pages.status),
        Route("/queue", pages.queue),
        Route("/running", pages.running),
        Route("/runs", pages.runs),
        Route("/runs/{run_id}", pages.run),
        Route("/compare", pages.compare),
        Route("/prompts", pages.prompts),
        Route("/prompts/delete", pages.delete_prompts),
        Route("/prompts/{prompt_id}", pages.prompt),
        Route("/events", streams.events),
        Route("/events/log/{batch_id}", streams.batch_log),
        Route("/files/{rel:path}", streams.home_file),
        Route("/media/{kind}/{record_id}/{rest:path}", streams.media),
        Route("/actions/queue/pause", a(actions.pause), methods=["POST"]),
        Route("/actions/queue/resume", a(actions.resume), methods=["POST"]),
        Route("/actions/runs/cancel", a(actions.cancel), methods=["POST"]),
        Route("/actions/runs/retry", a(actions.retry), methods=["POST"]),
        Route("/actions/runs/priority", a(actions.priority), methods=["POST"]),
        Route("/actions/runs/launch", a(actions.launch), methods=["POST"]),
        Route("/actions/runs/{run_id}/rate", a(actions.rate), methods=["POST"]),
        Route("/actions/batches/{batch_id}/cancel", a(actions.cancel), methods=["POST"]),
        Route("/actions/hosts/refresh", a(actions.refresh_hosts), methods=["POST"]),
        Route("/actions/prompts/create", a(actions.create_prompt), methods=["POST"]),
        Route("/actions/prompts/upload", a(actions.upload_prompt, upload=True), methods=["POST"]),
        Route("/actions/prompts/delete", a(actions.delete_prompts), methods=["POST"]),
        Route("/actions/prompts/{prompt_id}/estimate", a(actions.estimate), methods=["POST"]),
        Route("/actions/prompts/{prompt_id}/transfer", a(actions.transfer), methods=["POST"]),
        Route("/actions/prompts/{prompt_id}/enhance", a(actions.enhance), methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]


def build(ctx: UiContext) -> ASGIApp:
    app = Starlette(routes=routes())
    app.state.ctx = ctx
    return GuardMiddleware(app, ctx.guard)
