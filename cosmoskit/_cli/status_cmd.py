"""``cosmoskit status``: each executor's own report joined with what the ledger places there."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import typer

from cosmoskit._cli import complete
from cosmoskit._cli.common import JSON_OPTION

if TYPE_CHECKING:
    from cosmoskit._core.hoststatus import ExecutorStatus
    from cosmoskit._core.records import BatchRecord


def collect(names: list[str] | None = None) -> list[dict[str, Any]]:
    """Each executor's status record, with the batches the ledger puts there and the mismatches as warnings."""
    from cosmoskit._core import context
    from cosmoskit._core.errors import CosmoskitError
    from cosmoskit._core.hoststatus import ExecutorStatus

    settings = context.settings()
    engine = context.engine()
    engine.settle_orphans()
    with context.ledger().read() as tx:
        active = [b.copy() for b in tx.active_batches()]
        runs = {r["id"]: r.copy() for r in tx.active_runs()}
    out = []
    try:
        for label in names or settings.executor_names():
            entry: dict[str, Any] = {"executor": label}
            mine = [b for b in active if b["executor"] == label]
            try:
                ex = engine.executor(label)
                entry["type"] = ex.name
                status = ex.status()
                status.warnings += mismatches(label, mine, status, ex.poll)
            except CosmoskitError as exc:
                status = ExecutorStatus.unreachable("", str(exc))
            entry.update(status.as_dict())
            if status.reachable:
                entry["models"] = readiness(engine, ex)
            entry["batches"] = [
                {
                    "id": b["id"],
                    "state": b["state"],
                    "operation": b["operation"],
                    "runs": [{"id": r, "status": runs[r]["status"] if r in runs else None} for r in b["runs"]],
                }
                for b in mine
            ]
            out.append(entry)
    finally:
        engine.close()
    return out


def readiness(engine: Any, ex: Any) -> list[dict[str, Any]]:
    """For every operation, whether this place has what it needs (repository, image, checkpoints …)."""
    from cosmoskit._core import plugins
    from cosmoskit._core.errors import CosmoskitError

    out = []
    for name in plugins.get_operations():
        op = engine.operation(name)
        try:
            checked = engine.place_checks(op, ex, refresh=True)
        except CosmoskitError as exc:  # a place that cannot be asked is said so, per model
            out.append({"operation": name, "model": op.model, "ready": None, "error": str(exc)})
            continue
        missing = [{"what": req.what, "fix": req.fix} for req, ok in checked if not ok]
        out.append(
            {"operation": name, "model": op.model, "ready": not missing, "checked": len(checked), "missing": missing}
        )
    return out


def mismatches(label: str, batches: list[BatchRecord], status: ExecutorStatus, poll: Any) -> list[str]:
    """Zombies (running in the ledger, gone at the place) and orphans (running at the place, unknown to the ledger)."""
    from cosmoskit._core.errors import CosmoskitError

    if not status.reachable:
        return []
    warnings = []
    for b in batches:
        if b["state"] != "running":
            continue
        try:
            state = poll(b["handle"]).state
        except CosmoskitError:
            continue
        if state == "vanished":
            warnings.append(
                f"zombie: batch {b['id']} ({len(b['runs'])} runs) is running in the ledger "
                f"but nothing runs on {label}; `cosmoskit attach` requeues its runs"
            )
    for job in status.jobs:
        known = {str((b.get("handle") or {}).get(job.handle_key)) for b in batches}
        if job.handle_key and job.handle_value not in known:
            warnings.append(
                f"orphan: {job.describe()} has no batch in the ledger; `cosmoskit kill --host {label}` stops it"
            )
    return warnings


def status(
    host: Optional[list[str]] = typer.Option(
        None, "--host", help="Only these executors.", autocompletion=complete.executors
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Each executor: reachable or not and why, GPUs, jobs, batches and runs, disk, zombies and orphans."""
    from cosmoskit._cli import output

    entries = collect(host)
    if json_:
        output.emit_json(entries)
        return
    for e in entries:
        head = f"[bold]{e['executor']}[/bold] ({e.get('type', '?')}, {e.get('host', '')})"
        if not e.get("reachable"):
            output.say(f"{head}  [red]unreachable[/red]: {output.escape(e.get('error') or '')}")
        else:
            free = e.get("disk_free_bytes")
            output.say(f"{head}  [green]reachable[/green]" + (f", {output.human_size(free)} free" if free else ""))
            if e.get("gpus"):
                output.table(
                    None,
                    ("gpu", "name", "memory", "util", "temp"),
                    (
                        (
                            g["index"],
                            g["name"],
                            f"{_num(g['memory_used_mb'])}/{_num(g['memory_total_mb'])} MB",
                            f"{_num(g['utilization_pct'])}%",
                            f"{_num(g['temperature_c'])} C",
                        )
                        for g in e["gpus"]
                    ),
                )
            elif e.get("gpu_note"):
                output.say(f"  GPUs: {output.escape(e['gpu_note'])}")
            for line in e.get("lines", []):
                output.say("  " + output.escape(line))
            for job in e.get("jobs", []):
                output.say("  " + output.escape(_describe(job)))
            for m in e.get("models", []):
                label = m["model"] or m["operation"]
                if m.get("ready") is None:
                    output.say(f"  {label}: [yellow]not checked[/yellow] ({output.escape(m.get('error', ''))})")
                elif m["ready"]:
                    output.say(f"  {label}: [green]ready[/green]" + ("" if m["checked"] else " (nothing to check)"))
                else:
                    output.say(
                        f"  {label}: [red]not ready[/red]: "
                        + "; ".join(
                            output.escape(x["what"] + (f" ({x['fix']})" if x["fix"] else "")) for x in m["missing"]
                        )
                    )
        for b in e["batches"]:
            output.say(
                f"  batch {b['id']} {b['operation']} {b['state']}: "
                + ", ".join(f"{r['id']} {r['status']}" for r in b["runs"])
            )
        for w in e.get("warnings", []):
            output.warn("  warning: " + w)


def _num(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}"


def _describe(job: dict[str, Any]) -> str:
    from cosmoskit._core.hoststatus import HostJob

    return HostJob(**job).describe()
