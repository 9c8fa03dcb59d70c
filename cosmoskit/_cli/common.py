"""Small pieces several commands share."""

from __future__ import annotations

import sys

import typer

from cosmoskit._core.errors import CosmoskitError

JSON_OPTION = typer.Option(False, "--json", help="Output as JSON.")
FORMAT_OPTION = typer.Option(
    None, "--format", help="table, plain, tsv or json (default: a table on a terminal, plain columns in a pipe)."
)
QUIET_OPTION = typer.Option(False, "--quiet", "-q", help="Only the ids, one per line (for xargs).")


def confirm(
    question: str, yes: bool, typed: str | None = None, *, action: str = "delete", nothing: str = "nothing was deleted"
) -> None:
    """Ask before anything large or destructive; ``--yes`` skips, no terminal without ``--yes`` refuses."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CosmoskitError(f"refusing to {action} without confirmation", hint="pass --yes")
    if typed:
        answer = typer.prompt(f"{question} Type {typed!r} to confirm")
        if answer.strip() != typed:
            raise CosmoskitError(f"not confirmed; {nothing}")
    elif not typer.confirm(question, default=False):
        raise CosmoskitError(f"not confirmed; {nothing}")


def settle_orphans() -> None:
    """Before a command shows runs: batches whose process died are settled now (cheap when there are none)."""
    from cosmoskit._core import context

    engine = context.engine()
    try:
        engine.settle_orphans()
    finally:
        engine.close()
