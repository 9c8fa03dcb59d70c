"""Printing what ``Engine.submit`` did, the same for every command that starts runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cosmoskit._cli import output
from cosmoskit._core.errors import EXIT_RUNS_FAILED, CosmoskitError

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
    made = [r for r in runs if r.get("result_prompt")]
    if made:
        from cosmoskit._core import context

        with context.ledger().read() as tx:
            for r in made:
                prompt = tx.prompt(str(r["result_prompt"]))
                if prompt is not None:
                    output.say(f"{r['id']} made prompt {prompt['id']} ({output.escape(prompt['name'])})")


def _hours(seconds: float) -> str:
    return (
        f"{seconds / 3600:.1f} h"
        if seconds >= 5400
        else f"{seconds / 60:.1f} min"
        if seconds >= 90
        else f"{seconds:.0f} s"
    )


def not_completed(runs: Sequence[Mapping[str, Any]]) -> CosmoskitError | None:
    """The error that ends a command whose runs did not all complete (exit code 3), or None."""
    bad = [r for r in runs if r.get("status") != "completed"]
    if not bad:
        return None
    said = []
    for r in bad[:3]:
        why = f"{r.get('reason')}: {r.get('error')}" if r.get("reason") and r.get("error") else r.get("error") or ""
        said.append(f"{r['id']} {r.get('status')}" + (f" ({why[:120]})" if why else ""))
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    return CosmoskitError(
        f"{len(bad)} of {len(runs)} run(s) did not complete: {'; '.join(said)}{more}",
        hint="`cosmoskit run show ID` says why; `cosmoskit queue retry ID` tries again",
        exit_code=EXIT_RUNS_FAILED,
    )


def show_submission(sub: Any, home: Path, *, json_: bool = False) -> None:
    """Print a submission: the dry run's files, the queued ids, or the runs' outcomes; runs run now that
    did not all complete end the command with exit code 3 (after their table or JSON is printed)."""
    if sub.mode == "dry-run":
        if json_:
            output.emit_json({"folder": str(sub.folder), "files": sub.files, "runs": len(sub.runs), **sub.plan})
            return
        plan = sub.plan
        output.say(
            f"[bold]Dry run[/bold]: {len(sub.runs)} run(s) in {plan.get('batches', 0)} batch(es), estimated GPU time "
            f"{_hours(plan.get('gpu_seconds', 0))} (one at a time: {_hours(plan.get('one_at_a_time_seconds', 0))}); "
            "nothing queued or started"
        )
        output.say(f"The first batch's files are in {sub.folder}:")
        for name, text in sub.files.items():
            output.say(f"[bold]── {name}[/bold]")
            output.console().print(text, markup=False, highlight=False)
        return
    if json_:
        output.emit_json(sub.runs)
    else:
        show_runs(sub.runs, home, queued=sub.mode == "queue")
    problem = not_completed(sub.runs) if sub.mode == "now" else None
    if problem is not None:
        raise problem
