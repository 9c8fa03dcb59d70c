from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

from cosmoskit._cli import complete
from cosmoskit._cli.common import FORMAT_OPTION, JSON_OPTION, QUIET_OPTION, confirm, settle_orphans

if TYPE_CHECKING:
    from cosmoskit._core.records import RunRecord

app = typer.Typer(help="List, show, rate and delete runs.", no_args_is_help=True)


def _summary(run: RunRecord) -> str:
    from cosmoskit._cli.submission import summary

    return summary(run)


@app.command("list")
def list_(
    status: Optional[list[str]] = typer.Option(None, "--status", help="Only runs in this status (repeatable)."),
    prompt: Optional[str] = typer.Option(
        None, "--prompt", help="Only runs of this prompt (id, name or prefix).", autocompletion=complete.prompts
    ),
    operation: Optional[str] = typer.Option(
        None, "--operation", help="Only transfer, upscale, enhance …", autocompletion=complete.operations
    ),
    sweep: Optional[str] = typer.Option(None, "--sweep", help="Only the runs one command made (sw_…), side by side."),
    limit: int = typer.Option(50, "--limit", "-n", help="Show at most this many (0 = all)."),
    json_: bool = JSON_OPTION,
    fmt: Optional[str] = FORMAT_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """List runs, newest first (a sweep's runs in the order they were made)."""
    from cosmoskit._cli import output
    from cosmoskit._core import context, plugins
    from cosmoskit._core.errors import CosmoskitError
    from cosmoskit._core.ledger import RUN_STATUSES
    from cosmoskit._core.queries import list_runs

    output.use_format(fmt)
    for s in status or []:
        if s not in RUN_STATUSES:
            raise CosmoskitError(f"unknown status {s!r}; one of {', '.join(RUN_STATUSES)}")
    if operation is not None:
        known = plugins.operation_names()
        if operation not in known:
            raise CosmoskitError(f"unknown operation {operation!r}; one of {', '.join(known)}")
    settle_orphans()
    with context.ledger().read() as tx:
        prompt_id = tx.resolve_prompt(prompt) if prompt else None
        runs = list_runs(
            tx,
            status=status,
            prompt_id=prompt_id,
            operation=operation,
            sweep=sweep,
            limit=None if sweep else limit or None,
        )
    if sweep:
        runs.reverse()  # a sweep reads in the order its variations were made
    if quiet:
        output.ids(r["id"] for r in runs)
        return
    if json_ or fmt == "json":
        output.emit_json(runs)
        return
    if not runs:
        output.say("No runs.")
        return
    output.table(
        None,
        ("id", "prompt", "operation", "status", "parameters", "created", "rating"),
        (
            (
                r["id"],
                r["prompt_id"],
                r["operation"],
                r["status"],
                _summary(r),
                output.short_time(r["created"]),
                r.get("rating") or "",
            )
            for r in runs
        ),
    )


@app.command("show")
def show(
    run: str = typer.Argument(..., help="Run id or unique prefix.", autocompletion=complete.runs),
    json_: bool = JSON_OPTION,
) -> None:
    """Show one run: parameters, status, batch, outputs, error."""
    from cosmoskit._cli import output
    from cosmoskit._core import context

    settle_orphans()
    with context.ledger().read() as tx:
        doc = tx.get_run(run)
    if json_:
        output.emit_json(doc)
        return
    output.say(f"[bold]{doc['id']}[/bold]  {doc['operation']}  [bold]{doc['status']}[/bold]")
    rows = [
        ("prompt", doc.get("prompt_id")),
        ("created", doc.get("created")),
        ("priority", doc.get("priority", 0)),
        ("attempts", doc.get("attempts", 0)),
        ("batch", doc.get("batch_id")),
        ("parent run", doc.get("parent_run")),
        ("rating", doc.get("rating")),
        ("error", doc.get("error")),
    ]
    rows += [(f"param {k}", v) for k, v in (doc.get("params") or {}).items()]
    rows += [(f"output {k}", v) for k, v in (doc.get("outputs") or {}).items()]
    output.table(None, ("field", "value"), ((k, output.escape(str(v))) for k, v in rows if v not in (None, "", {})))


@app.command("rate")
def rate(
    run: str = typer.Argument(..., help="Run id or unique prefix.", autocompletion=complete.runs),
    stars: int = typer.Argument(..., help="1 to 5."),
) -> None:
    """Rate a run from 1 to 5."""
    from cosmoskit._cli import output
    from cosmoskit._core import context

    engine = context.engine()
    try:
        run_id = engine.rate(run, stars=stars)["id"]
    finally:
        engine.close()
    output.say(f"Rated {run_id} {stars}/5.")


@app.command("delete")
def delete(
    run: str = typer.Argument(..., help="Run id or unique prefix.", autocompletion=complete.runs),
    delete_outputs: bool = typer.Option(False, "--delete-outputs", help="Also delete its run folder."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Delete a run from the ledger; its folder stays unless --delete-outputs."""
    from cosmoskit._cli import output
    from cosmoskit._core import context
    from cosmoskit._core.errors import CosmoskitError
    from cosmoskit._core.ledger import RUN_ACTIVE
    from cosmoskit._core.queries import folder_size, remove_folder, run_folder

    ledger = context.ledger()
    with ledger.read() as tx:
        doc = tx.get_run(run)
    if doc["status"] in RUN_ACTIVE:
        raise CosmoskitError(
            f"run {doc['id']} is {doc['status']}; cancel it first", hint=f"cosmoskit cancel {doc['id']}"
        )
    folder = run_folder(context.home(), doc["id"])
    size = folder_size(folder)
    output.say(
        f"Will delete run {doc['id']} ({doc['operation']}, {doc['status']}) from the ledger"
        + (
            f" and its folder {folder} ({output.human_size(size)})."
            if delete_outputs and folder.exists()
            else f"; keeps {folder} ({output.human_size(size)})."
            if folder.exists()
            else "."
        )
    )
    confirm("Delete?", yes)
    with ledger.transaction() as tx:
        current = tx.run(doc["id"])
        if current and current["status"] in RUN_ACTIVE:
            raise CosmoskitError(f"run {doc['id']} became {current['status']} meanwhile; nothing deleted")
        tx.delete_run(doc["id"])
    if delete_outputs:
        remove_folder(folder)
    output.say(f"Deleted {doc['id']}.")


def _operations_epilog() -> str:
    """Every registered operation and its parameters, for ``run create --help`` (loaded only then)."""
    from cosmoskit._core import plugins
    from cosmoskit._core.errors import CosmoskitError

    try:
        operations = plugins.get_operations()
    except CosmoskitError as exc:
        return f"(operations unavailable: {exc})"
    lines = ["Operations and their parameters (--param KEY=VALUE):", ""]
    for name, cls in sorted(operations.items()):
        lines.append(f"{name}: {cls.description}" + ("" if cls.needs_prompt else " (no prompt needed)"))
        for key, field in cls.parameter_schema().items():
            shown = str(field.default)
            shown = shown if len(shown) <= 40 else shown[:37] + "…"
            default = "" if field.default in (None, "", {}) else f" (default {shown})"
            lines.append(f"  {key} ({field.type_name()}): {field.doc}{default}")
        lines.append("")
    return "\n".join(lines)


class _OperationsHelp(typer.core.TyperCommand):
    """``--help`` lists each operation's parameters, read from the plugins only when asked for."""

    @property
    def epilog(self) -> str:
        from rich.markup import escape

        return escape(_operations_epilog())

    @epilog.setter
    def epilog(self, value: str | None) -> None:
        pass


@app.command("create", cls=_OperationsHelp)
def create(
    operation: str = typer.Argument(
        ..., help="A registered operation (see below), or a kind with --model.", autocompletion=complete.operations
    ),
    prompts: Optional[list[str]] = typer.Argument(
        None, help="Prompt ids, names or prefixes; several may share one batch.", autocompletion=complete.prompts
    ),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p", help="KEY=VALUE, repeatable; see below."),
    model: Optional[str] = typer.Option(
        None,
        "--model",
        "-m",
        help="With a kind (transfer): the model that does it (transfer1, transfer2.5, cosmos3-nano, cosmos3-super …).",
        autocompletion=complete.models,
    ),
    executor: Optional[str] = typer.Option(
        None,
        "--executor",
        "-e",
        help="Executor from cosmoskit.yaml (default: default_executor).",
        autocompletion=complete.executors,
    ),
    queue: bool = typer.Option(False, "--queue", help="Only queue the runs; a worker runs them."),
    priority: int = typer.Option(0, "--priority", help="Queue priority: higher runs first."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Write and show the spec files and command; run nothing."),
    show_log: bool = typer.Option(False, "--log", help="Print the model's log while it runs."),
    json_: bool = JSON_OPTION,
) -> None:
    """Run any registered operation on prompts: validated by the operation's own parameters."""
    from cosmoskit._cli.submission import show_submission
    from cosmoskit._core import context, plugins
    from cosmoskit._core.params import parse_params

    if model is not None:  # `run create transfer P --model transfer2.5`: the kind's operation for that model
        cls = plugins.operation_for(operation, model)
        operation = cls.name
    else:
        cls = plugins.get_operation(operation)
    params = parse_params(operation, cls.parameter_schema(), param or [])
    refs: list[str | None] = list(prompts or [])
    if not refs:
        if cls.needs_prompt:
            raise typer.BadParameter(f"{operation} needs at least one prompt", param_hint="PROMPTS")
        refs = [None]
    engine = context.engine()
    try:
        sub = engine.submit(
            operation,
            refs,
            params,
            priority=priority,
            executor=executor,
            show_log=show_log,
            quiet=json_,
            mode="dry-run" if dry_run else "queue" if queue else "now",
        )
    finally:
        engine.close()
    show_submission(sub, engine.home, json_=json_)
