from __future__ import annotations

from typing import Any

import typer

app = typer.Typer(help="Where the ledger lives, and restoring a damaged file from its backup.", no_args_is_help=True)


@app.command("path")
def path() -> None:
    """Print the ledger folder."""
    from cosmoskit._core import context

    typer.echo(str(context.ledger().root))


@app.command("info")
def info(json_: bool = typer.Option(False, "--json", help="Output as JSON.")) -> None:
    """Files, sizes, counts and schema version."""
    import os

    from cosmoskit._cli import output
    from cosmoskit._core import context, plugins

    ledger = context.ledger()
    with ledger.read() as tx:
        counts = {
            "prompts": len(tx.raw("prompts.json", "prompts")),
            "runs_active": len(tx.raw("active.json", "runs")),
            "runs_total": len(tx.raw("index.json", "runs")),
            "batches_total": len(tx.raw("index.json", "batches")),
        }
        for name in plugins.registry("register_tables"):
            counts[name] = len(tx.plugin_table(name))
        schema = tx.meta_get("schema_version")
        paused = (tx.meta_get("queue") or {}).get("paused", False)
    files: list[dict[str, Any]] = []
    for root, _dirs, names in os.walk(ledger.root):
        for name in sorted(names):
            if name.endswith(".json"):
                p = os.path.join(root, name)
                files.append({"file": os.path.relpath(p, ledger.root), "bytes": os.path.getsize(p)})
    data = {
        "path": str(ledger.root),
        "schema_version": schema,
        "queue_paused": paused,
        "counts": counts,
        "files": files,
    }
    if json_:
        output.emit_json(data)
        return
    output.say(f"[bold]ledger[/bold] {ledger.root}  schema {schema}")
    output.table(None, ("what", "count"), counts.items())
    output.table(None, ("file", "size"), ((f["file"], output.human_size(f["bytes"])) for f in files))


@app.command("restore")
def restore(
    name: str = typer.Argument(..., help="Ledger file to restore, e.g. active.json or history/2026-11.json."),
    json_: bool = typer.Option(False, "--json", help="Output as JSON."),
) -> None:
    """Put a damaged ledger file right (its backup, or rebuilt when it derives from the others) and repair
    what depends on it; says which acknowledged records the backup does not hold."""
    from cosmoskit._cli import output
    from cosmoskit._core import context
    from cosmoskit._core.verify import restore as restore_file

    done = restore_file(context.ledger(), context.home(), name)
    if json_:
        output.emit_json(
            {
                "file": str(done.path),
                "kept": str(done.kept) if done.kept else None,
                "rebuilt": done.rebuilt,
                "lost": done.lost,
                "repairs": [f.as_dict() for f in done.repairs],
            }
        )
        return
    what = "Rebuilt" if done.rebuilt else "Restored"
    source = "from the other ledger files" if done.rebuilt else "from its backup"
    output.say(f"{what} {done.path} {source}." + (f" The damaged file is kept as {done.kept}." if done.kept else ""))
    for f in done.repairs:
        output.say(f"  repaired: {output.escape(f.detail)} ({f.action})")
    if done.lost:
        output.warn(
            f"The backup predates the last change: {len(done.lost)} acknowledged record(s) are lost: "
            + ", ".join(done.lost)
        )
