from __future__ import annotations

import typer

from cosmoskit._cli.common import JSON_OPTION


def verify(
    fix: bool = typer.Option(False, "--fix", help="Repair what can be repaired without losing data."),
    deep: bool = typer.Option(False, "--deep", help="Also hash every input video."),
    json_: bool = JSON_OPTION,
) -> None:
    """Check the ledger against the filesystem: missing inputs, orphan run folders, vanished outputs."""
    from cosmoskit._cli import output
    from cosmoskit._core import context
    from cosmoskit._core.verify import check

    report = check(context.ledger(), context.home(), fix=fix, deep=deep)
    if json_:
        output.emit_json([f.as_dict() for f in report.findings])
    elif not report.findings:
        output.say("The ledger and the files agree.")
    else:
        output.table(
            None,
            ("problem", "subject", "detail", "repair"),
            (
                (
                    f.kind,
                    f.subject,
                    output.escape(f.detail),
                    f.action if f.fixed else ("--fix repairs it" if f.fixable else "needs you"),
                )
                for f in report.findings
            ),
        )
    unresolved = [f for f in report.findings if not f.fixed]
    if unresolved:
        raise typer.Exit(1)
