"""Bundled plugin cosmoskit_ui: ``cosmoskit ui``, a live local web app over the same engine and ledger.

Only typer is imported here: the web stack (starlette, uvicorn, jinja2) is an optional extra,
``pip install 'cosmoskit[ui]'``, loaded inside the command so that ``cosmoskit --help`` stays fast
and a core install without the extra still works.
"""
from __future__ import annotations

from typing import Optional

import typer

import cosmoskit


@cosmoskit.hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("ui")
    def ui(
        host: str = typer.Option("127.0.0.1", "--host",
                                 help="Address to bind; any but loopback needs the token printed in the URL."),
        port: Optional[int] = typer.Option(None, "--port", help="Port (default: 8765, or a free one if it is taken)."),
        open_: bool = typer.Option(False, "--open", help="Open the page in the web browser."),
        work: bool = typer.Option(False, "--work",
                                  help="Also run the worker in this process: queued runs are launched."),
    ) -> None:
        """A live local web app: queue, running batches and hosts, runs with ratings, prompts and sweeps."""
        from cosmoskit_ui.command import run_ui

        run_ui(host=host, port=port, open_browser=open_, work=work)
