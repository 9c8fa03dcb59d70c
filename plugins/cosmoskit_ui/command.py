"""``cosmoskit ui``: check the extra is installed, start the services and serve until Ctrl-C."""
from __future__ import annotations

import importlib.util
import socket
import webbrowser

from cosmoskit import api

# module -> the distribution that provides it (all of them come with `pip install 'cosmoskit[ui]'`)
REQUIRED = {"starlette": "starlette", "uvicorn": "uvicorn", "jinja2": "jinja2", "multipart": "python-multipart"}
DEFAULT_PORT = 8765
INSTALL_HINT = "pip install 'cosmoskit[ui]'"


def missing_modules() -> list[str]:
    """The extra's distributions that are not importable here (find_spec imports nothing)."""
    return [dist for module, dist in REQUIRED.items() if importlib.util.find_spec(module) is None]


def free_port(host: str, wanted: int | None) -> int:
    """``wanted`` when given (taken: uvicorn says so), else the default port or, if that is taken, any free one."""
    if wanted is not None:
        return wanted
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in (DEFAULT_PORT, 0):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise api.CosmoskitError(f"no free port on {host}")


def run_ui(*, host: str, port: int | None, open_browser: bool, work: bool) -> None:
    missing = missing_modules()
    if missing:
        raise api.CosmoskitError(f"cosmoskit ui needs {', '.join(missing)}: {INSTALL_HINT}")
    from cosmoskit_ui.server import UiServer

    settings = api.settings()
    server = UiServer(settings, host=host, port=free_port(host, port), work=work, log=api.say)
    url = server.url
    api.say(f"cosmoskit ui: project [bold]{api.escape(str(settings.home))}[/bold]")
    api.say(f"Open [bold]{api.escape(url)}[/bold]" + ("  (the worker runs in this process)" if work else ""))
    if server.guard.token:
        api.say("[dim]Any other address than loopback needs the token in this URL; keep it private.[/dim]")
    api.say("[dim]Ctrl-C stops the server" + (" and the worker (running batches go on)." if work else ".") + "[/dim]")
    if open_browser:

        def open_page() -> None:
            webbrowser.open(url)

        server.on_ready(open_page)
    server.serve()
