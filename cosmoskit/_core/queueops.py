"""What a person does to the queue and to finished runs, for every front end (the CLI, the web UI, plugins).

Each is one ledger transaction; ``Engine`` exposes them as methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cosmoskit._core.errors import CosmoskitError
from cosmoskit._core.ledger import Ledger
from cosmoskit._core.records import BatchRecord, RunRecord

if TYPE_CHECKING:
    from cosmoskit._core.costmodel import CostModel
    from cosmoskit._core.engine import Engine
    from cosmoskit._core.makespan import Schedule
    from cosmoskit._core.strategy import Batch

RETRYABLE = ("failed", "cancelled")
PRIORITY_RANGE = (-1_000_000, 1_000_000)


def set_paused(ledger: Ledger, paused: bool) -> None:
    with ledger.transaction() as tx:
        tx.meta_set("queue", {**(tx.meta_get("queue") or {}), "paused": paused})


def is_paused(ledger: Ledger) -> bool:
    with ledger.read() as tx:
        return bool((tx.meta_get("queue") or {}).get("paused"))


def retry(ledger: Ledger, refs: list[str]) -> list[RunRecord]:
    """Failed or cancelled runs back in the queue with fresh attempts; all of them or, on a run that is
    neither, none."""
    done = []
    with ledger.transaction() as tx:
        for text in refs:
            run = tx.get_run(text)
            if run["status"] not in RETRYABLE:
                raise CosmoskitError(f"run {run['id']} is {run['status']}; only failed or cancelled runs are retried")
            done.append(
                tx.update_run(
                    run["id"],
                    status="queued",
                    attempts=0,
                    batch_id=None,
                    error=None,
                    reason=None,
                    finished=None,
                    max_controls=None,
                    retry=False,
                )
            )
    return done


def set_priority(ledger: Ledger, refs: list[str], priority: int) -> list[RunRecord]:
    """A new queue priority for queued runs (higher runs first)."""
    lo, hi = PRIORITY_RANGE
    if isinstance(priority, bool) or not isinstance(priority, int) or not lo <= priority <= hi:
        raise CosmoskitError(f"priority must be an integer from {lo} to {hi}, not {priority!r}")
    done = []
    with ledger.transaction() as tx:
        for text in refs:
            run = tx.get_run(text)
            if run["status"] != "queued":
                raise CosmoskitError(f"run {run['id']} is {run['status']}; only a queued run's priority can change")
            done.append(tx.update_run(run["id"], priority=priority))
    return done


def rate(
    ledger: Ledger, ref: str, *, stars: int | None = None, note: str | None = None, clear_rating: bool = False
) -> RunRecord:
    """A rating from 1 to 5 and/or a note on a run (``clear_rating`` removes the rating)."""
    changes: dict[str, Any] = {}
    if clear_rating:
        changes["rating"] = None
    elif stars is not None:
        if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
            raise CosmoskitError(f"a rating is 1 to 5, not {stars!r}")
        changes["rating"] = stars
    if note is not None:
        from cosmoskit._core.textcheck import text_problem

        problem = text_problem(note, "the note", limit=10_000)
        if problem:
            raise CosmoskitError(problem)
        changes["note"] = note
    if not changes:
        raise CosmoskitError("give a rating (1 to 5) or a note")
    with ledger.transaction() as tx:
        run = tx.get_run(ref)
        return tx.update_run(run["id"], **changes)


@dataclass
class PlannedRun:
    run: RunRecord
    batch: int  # index into QueuePlan.batches
    start_seconds: float  # estimated, from now
    finish_seconds: float
    controls: list[str]
    model: str = ""  # the model that runs it (its operation's, or the operation's name)


@dataclass
class QueuePlan:
    """What a worker would do with the queue now: the batches in launch order, each run's estimated start
    and finish (from the cost model and the executors' slots), and the GPU time against one run at a time."""

    strategy: str
    paused: bool
    running: list[BatchRecord]
    runs: list[PlannedRun]
    batches: list[Batch]
    model: CostModel
    slots: int
    summary: dict[str, Any] = field(default_factory=dict)
    schedule: Schedule | None = None  # the batches on the slots, with the makespan and its lower bound


def plan(engine: Engine, strategy: str | None = None) -> QueuePlan:
    from cosmoskit._core.costmodel import CostModel, model_of
    from cosmoskit._core.estimate import summary
    from cosmoskit._core.gpuview import busy_seconds, slot_count
    from cosmoskit._core.planning import schedule_for
    from cosmoskit._core.queries import prompts_of, queued

    engine.settle_orphans()
    with engine.ledger.read() as tx:
        runs, prompts = queued(tx)
        running = [b.copy() for b in tx.active_batches()]
        in_flight = {r["id"]: r.copy() for r in tx.active_runs()}
        prompts = {**prompts, **prompts_of(tx, list(in_flight.values()))}
        paused = bool((tx.meta_get("queue") or {}).get("paused"))
    name = strategy or str(engine.settings.get("batching.strategy"))
    model = CostModel.from_settings(engine.settings)
    slots = slot_count(engine, engine.settings.served_executors())
    sched = schedule_for(engine, runs, prompts, name, slots, busy_seconds(engine, running, in_flight, prompts))
    batches = sched.batches
    by_id = {r["id"]: r for r in runs}
    planned = []
    for index, placed in enumerate(sched.placed):
        own = model_of(placed.batch, model)
        t = placed.start + own.load_seconds(placed.batch.controls)
        for item in placed.batch.items:
            start, t = t, t + own.run_seconds(item, placed.batch.controls)
            run = by_id[item.run_id]
            op = engine.operation(run["operation"])
            planned.append(PlannedRun(run, index, start, t, sorted(item.controls), op.model or op.name))
    planned.sort(key=lambda p: (p.start_seconds, p.batch))
    return QueuePlan(name, paused, running, planned, batches, model, slots, summary(batches, model), sched)


@dataclass
class DeletionPreview:
    """What deleting prompts takes with it, shown before anything goes."""

    prompts: list[str]
    runs: list[str]
    folders: list[str]  # run folders that exist on disk
    folder_bytes: int
    busy: list[str] = field(default_factory=list)  # runs still in flight: nothing may be deleted

    @property
    def blocked(self) -> str | None:
        if not self.busy:
            return None
        return (
            f"{len(self.busy)} run(s) of these prompts are still in flight ({', '.join(self.busy[:3])}); "
            "cancel them first"
        )


def delete_preview(engine: Engine, prompt_refs: list[str] | None) -> DeletionPreview:
    """``prompt_refs`` None means every prompt."""
    from cosmoskit._core.ledger import RUN_ACTIVE
    from cosmoskit._core.queries import folder_size, run_folder

    with engine.ledger.read() as tx:
        targets = (
            [p["id"] for p in tx.prompts()] if prompt_refs is None else [tx.get_prompt(r)["id"] for r in prompt_refs]
        )
        wanted = set(targets)
        runs = [r.copy() for r in tx.runs() if r["prompt_id"] in wanted]
    folders = [run_folder(engine.home, r["id"]) for r in runs]
    existing = [f for f in folders if f.exists()]
    return DeletionPreview(
        targets,
        [r["id"] for r in runs],
        [str(f) for f in existing],
        sum(folder_size(f) for f in existing),
        [r["id"] for r in runs if r["status"] in RUN_ACTIVE],
    )


def delete_prompts(engine: Engine, preview: DeletionPreview, *, delete_outputs: bool = False) -> None:
    """Delete what the preview showed, in one transaction; refuse if a run started meanwhile."""
    from pathlib import Path

    from cosmoskit._core.ledger import RUN_ACTIVE
    from cosmoskit._core.queries import remove_folder

    if preview.blocked:
        raise CosmoskitError(preview.blocked, hint="cosmoskit cancel RUN")
    with engine.ledger.transaction() as tx:
        for run_id in preview.runs:
            current = tx.run(run_id)
            if current and current["status"] in RUN_ACTIVE:
                raise CosmoskitError(f"run {run_id} became {current['status']} meanwhile; nothing deleted")
        for run_id in preview.runs:
            tx.delete_run(run_id)
        for prompt_id in preview.prompts:
            tx.delete_prompt(prompt_id)
    if delete_outputs:
        for folder in preview.folders:
            remove_folder(Path(folder))
