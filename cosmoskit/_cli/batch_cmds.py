"""``cosmoskit logs``, ``cancel``, ``attach`` and ``kill``: looking at and steering batches, whatever their executor."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

import typer

from cosmoskit._cli import complete
from cosmoskit._cli.common import JSON_OPTION


def logs(
    run: str = typer.Argument(..., help="Run id or unique prefix.", autocompletion=complete.runs),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming while the batch runs."),
    whole_batch: bool = typer.Option(False, "--batch", help="Show the whole batch log, not only this run's part."),
    json_: bool = typer.Option(False, "--json", help="The log as JSON ({id, batch, log}); not with -f."),
) -> None:
    """Show a run's log; with -f stream its batch's log live from wherever it runs."""
    from cosmoskit._core import context
    from cosmoskit._core.errors import CosmoskitError
    from cosmoskit._core.ledger import BATCH_ACTIVE
    from cosmoskit._core.queries import run_folder

    if json_ and follow:
        raise CosmoskitError("--json gives a finished log; use it without -f")
    engine = context.engine()
    with context.ledger().read() as tx:
        doc = tx.get_run(run)
        batch_id = doc.get("batch_id")
        batch = tx.batch(batch_id) if batch_id else None
    if follow and doc["status"] == "queued":
        # like `sky logs`: wait for the run to start, then follow it
        sys.stderr.write(f"{doc['id']} is queued; waiting for it to start (Ctrl-C stops waiting, not the run)\n")
        sys.stderr.flush()
        while doc["status"] == "queued":
            time.sleep(0.5)
            with context.ledger().read() as tx:
                doc = tx.get_run(doc["id"])
                batch_id = doc.get("batch_id")
                batch = tx.batch(batch_id) if batch_id else None
    out: Any = sys.stdout
    if json_:
        import io

        out = io.StringIO()
    if batch is None or batch["state"] not in BATCH_ACTIVE:
        folder = run_folder(context.home(), doc["id"]) / "logs"
        path = folder / ("batch.log" if whole_batch else "run.log")
        if not path.exists():
            if doc["status"] == "queued":
                raise CosmoskitError(f"run {doc['id']} is queued; it has no log yet")
            raise CosmoskitError(f"run {doc['id']} has no log at {path}")
        out.write(path.read_text(encoding="utf-8", errors="replace"))
        if json_:
            from cosmoskit._cli.output import emit_json

            emit_json({"id": doc["id"], "batch": batch_id, "log": out.getvalue()})
        return
    ex = engine.executor(batch["executor"])
    offset = 0
    try:
        while True:
            data, offset = ex.read_log(batch["handle"], offset)
            if data:
                out.write(data.decode("utf-8", "replace"))
                out.flush()
            if not follow:
                break
            state = ex.poll(batch["handle"]).state
            if state != "running":
                data, offset = ex.read_log(batch["handle"], offset)
                out.write(data.decode("utf-8", "replace"))
                break
            time.sleep(0.5)
    finally:
        engine.close()
    if json_:
        from cosmoskit._cli.output import emit_json

        emit_json({"id": doc["id"], "batch": batch_id, "log": out.getvalue()})


def cancel(
    target: str = typer.Argument(
        ..., help="A run or a batch (id or unique prefix).", autocompletion=complete.runs_and_batches
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Cancel a queued or running run, or a whole batch; stops exactly what it names."""
    from cosmoskit._cli import output
    from cosmoskit._core import context, owner

    engine = context.engine()
    try:
        result = engine.cancel(target)
        if result.get("stopping"):
            with context.ledger().read() as tx:
                batch = tx.batch(result["batch"])
            if batch and not owner.alive(batch.get("owner")):
                # Nobody follows this batch: wait for the stop and settle its runs here.
                engine.follow(batch["id"], max_attempts=1)
        with context.ledger().read() as tx:
            names = result.get("runs") or [result["id"]]
            runs = [tx.run(r) for r in names]
    finally:
        engine.close()
    if json_:
        output.emit_json({**result, "runs": runs})
        return
    for r in runs:
        if r:
            output.say(
                f"{r['id']}: {r['status']}"
                + (
                    " (stop requested; its batch's owner settles it)"
                    if r["status"] not in ("cancelled", "completed", "failed")
                    else ""
                )
            )


def attach(
    batch: Optional[str] = typer.Argument(
        None, help="A batch id or prefix (default: every orphaned batch).", autocompletion=complete.batches
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Reattach to batches whose process died: follow the running ones and finish every run, relaunching nothing."""
    from cosmoskit._cli import output
    from cosmoskit._core import context
    from cosmoskit._core.display import BatchDisplay
    from cosmoskit._core.ledger import BATCH_ACTIVE

    engine = context.engine()
    done = {}
    try:
        done.update(engine.reconcile())
        with context.ledger().read() as tx:
            if batch:
                targets = [tx.get_batch(batch)]
            else:
                targets = [b for b in tx.active_batches() if done.get(b["id"]) == "running"]
        for b in targets:
            if b["state"] not in BATCH_ACTIVE:
                done[b["id"]] = b["state"]
                continue
            with BatchDisplay([{"id": r} for r in b["runs"]], quiet=json_) as display:
                engine.follow(b["id"], on_event=display)
            done[b["id"]] = "finished"
    finally:
        engine.close()
    if json_:
        output.emit_json(done)
    elif not done:
        output.say("No unfinished batches.")
    else:
        output.table(None, ("batch", "result"), done.items())


def kill(
    host: str = typer.Option(
        ..., "--host", help="Executor name: stop everything cosmoskit runs there.", autocompletion=complete.executors
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Stop everything cosmoskit runs on one executor, known to the ledger or not; its runs become cancelled."""
    from cosmoskit._cli import output
    from cosmoskit._core import context

    engine = context.engine()
    try:
        stopped, batches = engine.kill_all(host)
    finally:
        engine.close()
    if json_:
        output.emit_json({"host": host, "stopped": stopped, "batches": batches})
    elif stopped or batches:
        output.say(
            f"{host}: stopped {len(stopped)} launcher(s)/container(s)/job(s); {len(batches)} batch(es) cancelled."
        )
    else:
        output.say(f"{host}: nothing was running.")
