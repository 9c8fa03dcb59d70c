from __future__ import annotations

from typing import Any, List, Optional

import typer

from cosmoskit._cli.common import JSON_OPTION


def collect(names: list[str] | None = None) -> list[dict[str, Any]]:
    """Each executor's own status, joined with what the ledger says runs there, and the mismatches."""
    from cosmoskit._core import context
    from cosmoskit._core.errors import CosmoskitError

    settings = context.settings()
    engine = context.engine()
    with context.ledger().read() as tx:
        active = [dict(b) for b in tx.active_batches()]
        runs = {r["id"]: dict(r) for r in tx.active_runs()}
    out = []
    try:
        for label in names or settings.executor_names():
            entry: dict[str, Any] = {"executor": label}
            try:
                ex = engine.executor(label)
                entry["type"] = ex.name
                entry.update(ex.status())
            except CosmoskitError as exc:
                entry.update(reachable=False, error=str(exc))
            mine = [b for b in active if b["executor"] == label]
            entry["batches"] = [{"id": b["id"], "state": b["state"], "operation": b["operation"],
                                 "runs": [{"id": r, "status": runs.get(r, {}).get("status")} for r in b["runs"]]}
                                for b in mine]
            warnings = []
            if entry.get("reachable"):
                for b in mine:
                    if b["state"] != "running":
                        continue
                    try:
                        state = ex.poll(b["handle"]).state
                    except CosmoskitError:
                        continue
                    if state == "vanished":
                        warnings.append(f"zombie: batch {b['id']} ({len(b['runs'])} runs) is running in the ledger "
                                        f"but nothing runs on {label}; `cosmoskit attach` requeues its runs")
                for c in _orphans(mine, entry.get("containers", []), "container", "name"):
                    warnings.append(f"orphan: container {c['name']} runs on {label} with no batch in the ledger; "
                                    f"`cosmoskit kill --host {label}` stops it")
                for j in _orphans(mine, entry.get("jobs", []), "job_id", "job_id"):
                    warnings.append(f"orphan: Slurm job {j['job_id']} ({j['name']}, {j['state']}) has no batch "
                                    f"in the ledger; `cosmoskit kill --host {label}` cancels it")
                for launcher in _orphans(mine, entry.get("launchers", []), "batch_dir", "batch_dir"):
                    warnings.append(f"orphan: launcher {launcher['pid']} ({launcher['batch_dir']}) has no batch "
                                    "in the ledger")
            entry["warnings"] = warnings
            out.append(entry)
    finally:
        engine.close()
    return out


def _orphans(batches: list[dict], found: list[dict], handle_key: str, key: str) -> list[dict]:
    """What the host reports (containers, jobs, launchers) that no batch's handle names."""
    known = {str((b.get("handle") or {}).get(handle_key)) for b in batches}
    return [item for item in found if str(item[key]) not in known]


def status(
    host: Optional[List[str]] = typer.Option(None, "--host", help="Only these executors."),
    json_: bool = JSON_OPTION,
) -> None:
    """Each executor: reachable or not and why, GPUs, containers, batches and runs, disk, zombies and orphans."""
    from cosmoskit._cli import output

    entries = collect(host)
    if json_:
        output.emit_json(entries)
        return
    for e in entries:
        head = f"[bold]{e['executor']}[/bold] ({e.get('type', '?')}, {e.get('host', '')})"
        if not e.get("reachable"):
            output.say(f"{head}  [red]unreachable[/red]: {output.escape(e.get('error', ''))}")
        else:
            free = e.get("disk_free_bytes")
            output.say(f"{head}  [green]reachable[/green]" + (f", {output.human_size(free)} free" if free else ""))
            if e.get("gpus"):
                output.table(None, ("gpu", "name", "memory", "util", "temp"),
                             ((g["index"], g["name"], f"{g['memory_used_mb']:.0f}/{g['memory_total_mb']:.0f} MB",
                               f"{g['utilization_pct']:.0f}%", f"{g['temperature_c']:.0f} C") for g in e["gpus"]))
            elif e.get("gpu_error"):
                output.say(f"  GPUs: {e['gpu_error']}")
            for c in e.get("containers", []):
                output.say(f"  container {c['name']} ({c.get('image', '')}, {c.get('running_for', '')})")
            for p in e.get("partitions", []):
                output.say(f"  partition {p['partition']} ({p['available']}): {p['nodes']} node(s) {p['state']}, "
                           f"GRES {p['gres']}")
            for j in e.get("jobs", []):
                output.say(f"  job {j['job_id']} {j['name']} {j['state']}" + (f" ({j['reason']})" if j.get("reason") not in (None, "", "None") else ""))
        for b in e["batches"]:
            output.say(f"  batch {b['id']} {b['operation']} {b['state']}: "
                       + ", ".join(f"{r['id']} {r['status']}" for r in b["runs"]))
        for w in e["warnings"]:
            output.warn("  warning: " + w)
