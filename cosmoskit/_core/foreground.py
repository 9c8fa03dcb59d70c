"""Running runs now, in the foreground, with a live display; relaunching what deserves a second try."""

from __future__ import annotations

from cosmoskit._core.display import BatchDisplay
from cosmoskit._core.engine import Engine
from cosmoskit._core.errors import CosmoskitError
from cosmoskit._core.records import RunRecord

RELAUNCHES = 1  # issue: lines without output are relaunched once as a smaller batch, then failed


def run_now(
    engine: Engine, docs: list[RunRecord], *, executor: str | None = None, show_log: bool = False, quiet: bool = False
) -> list[RunRecord]:
    """Launch ``docs`` as one batch (one per run for operations that do not batch), follow to the end,
    relaunch runs that never got their turn, and return the final run records."""
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
