"""Printing what ``Engine.submit`` did, the same for every command that starts runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cosmoskit._cli import output

STATUS_COLOUR = {"completed": "green", "failed": "red", "cancelled": "yellow"}


def summary(run: Mapping[str, Any]) -> str:
    """The run's parameters as its operation summarises them (``vis=0.5,depth=0.5`` for a transfer)."""
    from cosmoskit._core import plugins
    from cosmoskit._core.errors import CosmoskitError

    try:
        return str(plugins.get_operation(run["operation"]).summary(run))
    except CosmoskitError:  # its plugin is not loaded: show the record as it is
        return ""


def show_runs(runs: Sequence[Mapping[str, Any]], home: Path, *, queued: bool = False) -> None:
    if queued:
        output.say(f"Queued {len(runs)} run(s): {', '.join(r['id'] for r in runs)}")
        return
    rows = []
    for r in runs:
        outs = r.get("outputs") or {}
        main = next(iter(outs.values()), "")
        colour = STATUS_COLOUR.get(r["status"], "white")
        rows.append(
            (
                r["id"],
                r["operation"],
                f"[{colour}]{r['status']}[/{colour}]",
                output.escape(summary(r)),
                main if main else output.escape(r.get("error") or ""),
            )
        )
    output.table(None, ("run", "operation", "status", "parameters", f"output (under {home}) or reason"), rows)


def show_submission(sub: Any, home: Path, *, json_: bool = False) -> None:
    """Print a submission: the dry run's files, the queued ids, or the runs' outcomes."""
    if sub.mode == "dry-run":
        if json_:
            output.emit_json({"folder": str(sub.folder), "files": sub.files})
            return
        output.say(f"[bold]Dry run[/bold]: wrote {sub.folder} (nothing queued or started)")
        for name, text in sub.files.items():
            output.say(f"[bold]── {name}[/bold]")
            output.console().print(text, markup=False, highlight=False)
        return
    if json_:
        output.emit_json(sub.runs)
        return
    show_runs(sub.runs, home, queued=sub.mode == "queue")
