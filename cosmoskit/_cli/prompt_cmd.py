from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cosmoskit._cli import complete
from cosmoskit._cli.common import FORMAT_OPTION, JSON_OPTION, QUIET_OPTION, confirm

app = typer.Typer(help="Create, list, show and delete prompts.", no_args_is_help=True)


@app.command("create")
def create(
    text: str = typer.Argument(..., help="The prompt text."),
    input: Path = typer.Argument(
        ..., help="Folder with color.mp4/rgb.mp4/input.mp4 and optional depth/seg/edge/vis videos, or one mp4."
    ),
    name: Optional[str] = typer.Option(None, "--name", help="Readable name (made from the text when left out)."),
    negative: Optional[str] = typer.Option(None, "--negative", help="Negative prompt (else the configured default)."),
    json_: bool = JSON_OPTION,
) -> None:
    """Create a prompt from text and its input videos."""
    from cosmoskit._cli import output
    from cosmoskit._core import context
    from cosmoskit._core.prompts import new_prompt

    ledger = context.ledger()
    with ledger.read() as tx:
        taken = {p["name"] for p in tx.prompts()}
    made = new_prompt(text, input, name=name, negative=negative, taken_names=taken)
    with ledger.transaction() as tx:
        doc = tx.add_prompt(made)
    if json_:
        output.emit_json(doc)
        return
    inputs = ", ".join(f"{k}={Path(v['path']).name}" for k, v in doc["inputs"].items())
    output.say(
        f"Created prompt [bold]{doc['id']}[/bold] {output.escape(doc['name'])} "
        f"({doc['frames']} frames, {doc['fps']:g} fps, {doc['width']}x{doc['height']}; {output.escape(inputs)})"
    )


@app.command("list")
def list_(
    search: Optional[str] = typer.Option(None, "--search", "-s", help="Case-insensitive text to find in name or text."),
    has_runs: Optional[bool] = typer.Option(None, "--has-runs/--no-runs", help="Only prompts with (or without) runs."),
    limit: int = typer.Option(50, "--limit", "-n", help="Show at most this many (0 = all)."),
    json_: bool = JSON_OPTION,
    fmt: Optional[str] = FORMAT_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """List prompts, newest first."""
    from cosmoskit._cli import output
    from cosmoskit._core import context
    from cosmoskit._core.queries import run_counts

    output.use_format(fmt)
    json_ = json_ or fmt == "json"

    needle = search.lower() if search else None
    with context.ledger().read() as tx:
        prompts = [
            p for p in tx.prompts() if needle is None or needle in p["name"].lower() or needle in p["text"].lower()
        ]
        counts = run_counts(tx) if has_runs is not None or not json_ else None
    if has_runs is not None and counts is not None:
        prompts = [p for p in prompts if bool(counts.get(p["id"])) == has_runs]
    prompts.sort(key=lambda p: p["created"], reverse=True)
    if limit:
        prompts = prompts[:limit]
    if quiet:
        output.ids(p["id"] for p in prompts)
        return
    if json_:
        output.emit_json([dict(p) for p in prompts])
        return
    if not prompts:
        output.say("No prompts." if not search else f"No prompt matches {search!r}.")
        return

    def mark(text: str) -> str:
        text = output.escape(text if len(text) <= 90 else text[:87] + "…")
        if not needle:
            return text
        import re

        return re.sub(
            re.escape(output.escape(search or "")), lambda m: f"[reverse]{m.group(0)}[/reverse]", text, flags=re.I
        )

    output.table(
        None,
        ("id", "name", "text", "runs", "created"),
        (
            (p["id"], mark(p["name"]), mark(p["text"]), (counts or {}).get(p["id"], 0), output.short_time(p["created"]))
            for p in prompts
        ),
    )


@app.command("show")
def show(
    prompt: str = typer.Argument(..., help="Prompt id, name or unique prefix.", autocompletion=complete.prompts),
    json_: bool = JSON_OPTION,
) -> None:
    """Show one prompt with its runs."""
    from cosmoskit._cli import output
    from cosmoskit._core import context
    from cosmoskit._core.queries import list_runs

    with context.ledger().read() as tx:
        doc = tx.get_prompt(prompt)
        runs = list_runs(tx, prompt_id=doc["id"])
    if json_:
        output.emit_json({**doc, "runs": runs})
        return
    output.say(f"[bold]{doc['id']}[/bold]  {output.escape(doc['name'])}")
    output.say(output.escape(doc["text"]))
    if doc.get("negative_prompt"):
        output.say(f"[dim]negative:[/dim] {output.escape(doc['negative_prompt'] or '')}")
    if doc.get("parent_prompt"):
        output.say(f"[dim]enhanced from[/dim] {doc['parent_prompt']}")
    output.table(
        "inputs",
        ("video", "path", "frames", "fps", "size"),
        ((k, v["path"], v["frames"], f"{v['fps']:g}", f"{v['width']}x{v['height']}") for k, v in doc["inputs"].items()),
    )
    if runs:
        output.table(
            "runs",
            ("id", "operation", "status", "created", "rating"),
            (
                (r["id"], r["operation"], r["status"], output.short_time(r["created"]), r.get("rating") or "")
                for r in runs
            ),
        )
    else:
        output.say("No runs yet.")


@app.command("delete")
def delete(
    prompt: Optional[str] = typer.Argument(
        None, help="Prompt id, name or unique prefix.", autocompletion=complete.prompts
    ),
    all_: bool = typer.Option(False, "--all", help="Delete every prompt."),
    delete_outputs: bool = typer.Option(
        False, "--delete-outputs", help="Also delete the run folders (kept by default)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Delete prompts and their runs from the ledger; outputs stay unless --delete-outputs."""
    from cosmoskit._cli import output
    from cosmoskit._core import context
    from cosmoskit._core.errors import CosmoskitError

    if bool(prompt) == all_:
        raise CosmoskitError("name one prompt or pass --all")
    engine = context.engine()
    try:
        preview = engine.delete_preview(None if all_ else [prompt or ""])
        if preview.blocked:
            raise CosmoskitError(preview.blocked, hint="cosmoskit cancel RUN")
        if not preview.prompts:
            output.say("No prompts to delete.")
            return
        size = output.human_size(preview.folder_bytes)
        output.say(f"Will delete {len(preview.prompts)} prompt(s) and {len(preview.runs)} run(s) from the ledger.")
        if delete_outputs:
            output.say(f"Will delete {len(preview.folders)} run folder(s), {size}.")
        elif preview.folders:
            output.say(f"Keeps {len(preview.folders)} run folder(s), {size} (pass --delete-outputs to remove them).")
        confirm("Delete?", yes, typed="delete all" if all_ else None)
        engine.delete_prompts(preview, delete_outputs=delete_outputs)
    finally:
        engine.close()
    output.say(
        f"Deleted {len(preview.prompts)} prompt(s), {len(preview.runs)} run(s)"
        + (f", {len(preview.folders)} folder(s)." if delete_outputs else ".")
    )
