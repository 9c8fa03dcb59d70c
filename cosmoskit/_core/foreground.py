"""Running runs now, in the foreground, with a live display; relaunching what deserves a second try."""

from __future__ import annotations

import time

from cosmoskit._core import owner
from cosmoskit._core.display import BatchDisplay
from cosmoskit._core.engine import Engine
from cosmoskit._core.errors import EXIT_INTERRUPTED, CosmoskitError
from cosmoskit._core.ledger import RUN_ACTIVE, RUN_TERMINAL
from cosmoskit._core.planning import plan
from cosmoskit._core.queries import prompts_of
from cosmoskit._core.records import BatchRecord, RunRecord
from cosmoskit._core.slots import NoFreeSlot

SLOT_RECHECK_SECONDS = 0.5  # a look at the ledger's leases; cheap, and a freed slot is taken within it
RELAUNCHES = 1  # issue: lines without output are relaunched once as a smaller batch, then failed


def run_now(
    engine: Engine, docs: list[RunRecord], *, executor: str | None = None, show_log: bool = False, quiet: bool = False
) -> list[RunRecord]:
    """Launch ``docs`` as one batch (one per run for operations that do not batch), follow to the end,
    relaunch runs that never got their turn, and return the final run records.

    Ctrl-C stops following, not the batch: the error it raises says where every run went."""
    run_ids = [d["id"] for d in docs]
    try:
        return _run_now(engine, docs, executor=executor, show_log=show_log, quiet=quiet)
    except KeyboardInterrupt:
        raise _interrupted(engine, run_ids) from None


def _interrupted(engine: Engine, run_ids: list[str]) -> CosmoskitError:
    """Where the runs of an interrupted foreground command are, in one line."""
    with engine.ledger.read() as tx:
        runs = [r for r in (tx.run(i) for i in run_ids) if r is not None]
    batches = sorted(
        {b for r in runs if r["status"] in RUN_ACTIVE and r["status"] != "queued" and (b := r.get("batch_id"))}
    )
    queued = [r["id"] for r in runs if r["status"] == "queued"]
    done = [r["id"] for r in runs if r["status"] in RUN_TERMINAL]
    parts = []
    if batches:
        parts.append(
            f"batch {', '.join(batches)} keeps running where it runs: `cosmoskit attach` follows it, "
            "a running worker adopts it"
        )
    if queued:
        shown = ", ".join(queued[:3]) + (" …" if len(queued) > 3 else "")
        parts.append(f"{len(queued)} run(s) not started are queued ({shown})")
    if done:
        parts.append(f"{len(done)} already finished")
    return CosmoskitError("Interrupted: " + ("; ".join(parts) or "nothing had started"), exit_code=EXIT_INTERRUPTED)


def _run_now(
    engine: Engine, docs: list[RunRecord], *, executor: str | None, show_log: bool, quiet: bool
) -> list[RunRecord]:
    """The runs go into the queue held for this process (a worker leaves them alone while it lives, and
    takes them if it dies), are planned into batches by the configured strategy like any queue (the least
    GPU time with ``optimal``), and each batch is launched and followed here; runs that deserve a second
    try are relaunched once."""
    if not docs:
        return []
    me = owner.me()
    for doc in docs:
        doc["held_by"] = me
    engine.queue(docs)
    run_ids = [d["id"] for d in docs]
    max_attempts = 1 + RELAUNCHES
    first = True
    try:
        while True:
            with engine.ledger.read() as tx:
                now = [r.copy() for r in (tx.run(i) for i in run_ids) if r is not None]
                prompts = prompts_of(tx, now)
            pending = [r for r in now if r["status"] == "queued" and (first or r.get("retry"))]
            if not pending:
                break
            if not first and any(r.get("reason") == "oom" for r in pending):
                groups = [[r["id"]] for r in pending]  # out of memory: each alone carries only its own controls
            else:
                groups = [b.run_ids for b in plan(engine, pending, prompts)]  # as the queue would be
            first = False
            for ids in groups:
                with BatchDisplay([{"id": i} for i in ids], show_log=show_log, quiet=quiet) as display:
                    try:
                        # partial: a run cancelled meanwhile is left out
                        batch = _launch_when_free(engine, ids, executor, display)
                    except CosmoskitError as exc:
                        if "nothing to launch" in str(exc):
                            continue
                        raise
                    engine.follow(batch["id"], on_event=display, max_attempts=max_attempts)
    finally:
        _release(engine, run_ids)
    with engine.ledger.read() as tx:
        final = [tx.run(r) for r in run_ids]
    return [r for r in final if r is not None]


def _launch_when_free(engine: Engine, ids: list[str], executor: str | None, display: BatchDisplay) -> BatchRecord:
    """Launch as soon as a GPU slot at the place is free (a worker's batches may hold them all): the
    runs stay queued and held for this command meanwhile, and it says once what it waits for."""
    said = False
    while True:
        try:
            return engine.launch(ids, executor=executor, on_event=display, partial=True)
        except NoFreeSlot as exc:
            if not said:
                display("waiting", {"reason": str(exc)})
                said = True
            time.sleep(SLOT_RECHECK_SECONDS)


def _release(engine: Engine, run_ids: list[str]) -> None:
    """Runs this process will not launch after all go to the workers."""
    with engine.ledger.transaction() as tx:
        for run_id in run_ids:
            run = tx.run(run_id)
            if run is not None and run.get("held_by"):
                tx.update_run(run_id, held_by=None)
