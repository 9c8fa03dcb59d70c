"""Bundled plugin cosmoskit_report: ``cosmoskit report``, a self-contained HTML gallery of runs.

Only typer is imported here; the builder (ledger, ffmpeg, HTML) loads inside the
command so that ``cosmoskit --help`` stays fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

import cosmoskit


@cosmoskit.hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        prompt: Optional[list[str]] = typer.Option(None, "--prompt", "-p",
                                                   help="Only this prompt (id or prefix) and the prompts enhanced "
                                                        "from it; repeatable."),
        status: Optional[list[str]] = typer.Option(None, "--status", "-s",
                                                   help="Only runs with this status (completed, failed …); "
                                                        "repeatable or comma-separated."),
        sweep: Optional[list[str]] = typer.Option(None, "--sweep",
                                                  help="Only the runs of this sweep (the runs of one command or drop "
                                                       "folder: `run list` shows its id); repeatable."),
        since: Optional[str] = typer.Option(None, "--since",
                                            help="Only runs created since DATE (2026-11-01, 2026-11-01T12:00) "
                                                 "or a span ago (36h, 7d, 2w)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o",
                                           help="Report folder (default: <home>/report). "
                                                "Thumbnails already there are reused."),
        open_: bool = typer.Option(False, "--open", help="Open index.html in the web browser when done."),
        jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="ffmpeg processes at once (default: CPU count)."),
        json_: bool = typer.Option(False, "--json", help="Output as JSON."),
    ) -> None:
        """Write a self-contained HTML gallery of prompts and runs (thumbnails, contact sheets, previews)."""
        from cosmoskit_report.build import run_command

        run_command(prompts=prompt or [], statuses=status or [], since=since, out=out, open_browser=open_,
                    jobs=jobs, json_=json_, sweeps=sweep or [])
