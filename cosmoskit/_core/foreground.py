"""Running runs now, in the foreground, with a live display; relaunching what deserves a second try."""

from __future__ import annotations

from cosmoskit._core.display import BatchDisplay
from cosmoskit._core.engine import Engine
from cosmoskit._core.errors import EXIT_INTERRUPTED, CosmoskitError
from cosmoskit._core.ledger import RUN_ACTIVE, RUN_TERMINAL
from cosmoskit._core.records import RunRecord

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
    if not docs:
        return []
    op = engine.operation(docs[0]["operation"])
    groups = [docs] if op.batchable else [[d] for d in docs]
    run_ids: list[str] = []
    max_attempts = 1 + RELAUNCHES
    for group in groups:
        with BatchDisplay(group, show_log=show_log, quiet=quiet) as display:
            batch = engine.launch(docs=group, executor=executor, on_event=display)
            run_ids += batch["runs"]
            engine.follow(batch["id"], on_event=display, max_attempts=max_attempts)
    while True:
        with engine.ledger.read() as tx:
            now = [tx.run(r) for r in run_ids]
        retry = [r for r in now if r is not None and r["status"] == "queued" and r.get("retry")]
        if not retry:
            break
        # Out of memory: each run alone carries only its own controls.  Otherwise the rest as one smaller batch.
        if any(r.get("reason") == "oom" for r in retry) or not op.batchable:
            pending = [[r["id"]] for r in retry]
        else:
            pending = [[r["id"] for r in retry]]
        for ids in pending:
            with BatchDisplay([{"id": i} for i in ids], show_log=show_log, quiet=quiet) as display:
                try:
                    # partial: a worker may have claimed some of them meanwhile; it runs those
                    batch = engine.launch(ids, executor=executor, on_event=display, partial=True)
                except CosmoskitError as exc:
                    if "nothing to launch" in str(exc):
                        continue
                    raise
                engine.follow(batch["id"], on_event=display, max_attempts=max_attempts)
    with engine.ledger.read() as tx:
        final = [tx.run(r) for r in run_ids]
    return [r for r in final if r is not None]
