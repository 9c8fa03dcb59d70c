"""Each GPU of a place as ``status`` shows it: free, or the batch and runs on it, since when, and its
estimated finish (the cost model's time for the batch, from when its model started)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from cosmoskit._core import timeutil
from cosmoskit._core.slots import leases_of, slot_views, slots_for

if TYPE_CHECKING:
    from cosmoskit._core.engine import Engine
    from cosmoskit._core.executor import Executor
    from cosmoskit._core.records import BatchRecord, PromptRecord, RunRecord


@dataclass
class GpuRow:
    label: str  # "GPU 0", or "slot 0" where nothing is pinned
    devices: list[str]
    batch: str | None = None
    state: str | None = None
    runs: list[str] = field(default_factory=list)
    since: str | None = None  # when its batch started (staging: when it was claimed)
    finish: str | None = None  # estimated, from the cost model
    staged: str | None = None  # the batch that starts here next

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gpu_rows(
    engine: Engine,
    ex: Executor,
    active: list[BatchRecord],
    runs: dict[str, RunRecord],
    prompts: dict[str, PromptRecord],
) -> list[GpuRow]:
    """One row per GPU (per anonymous slot where the place pins nothing)."""
    devices = engine.gpu_devices(ex)
    slots = slots_for(devices, 1, ex.concurrency())
    by_id = {b["id"]: b for b in active}
    rows = []
    for view in slot_views(slots, leases_of(active, ex.label)):
        row = GpuRow(view.label, list(view.devices), view.batch, view.state, staged=view.staged)
        batch = by_id.get(view.batch or "")
        if batch is not None:
            row.runs = list(batch["runs"])
            row.since = batch.get("started") or batch.get("created")
            seconds = estimated_seconds(engine, batch, runs, prompts)
            if row.since and seconds is not None:
                end = timeutil.parse(row.since) + dt.timedelta(seconds=seconds)
                row.finish = end.isoformat(timespec="seconds")
        rows.append(row)
    return rows


def estimated_seconds(
    engine: Engine, batch: BatchRecord, runs: dict[str, RunRecord], prompts: dict[str, PromptRecord]
) -> float | None:
    """The cost model's GPU time for a batch (None when its runs are gone from the ledger)."""
    from cosmoskit._core.costmodel import CostModel, model_of
    from cosmoskit._core.planning import items_for

    docs = [runs[r] for r in batch["runs"] if r in runs]
    if not docs:
        return None
    items = items_for(engine, docs, prompts)
    return model_of(items, CostModel.from_settings(engine.settings)).batch_seconds(items)


def slot_count(engine: Engine, labels: list[str]) -> int:
    """GPU slots (one GPU each, or the anonymous slots of a place that pins nothing) at these places; a
    place that cannot be asked now counts one."""
    from cosmoskit._core.errors import CosmoskitError

    total = 0
    for label in labels:
        ex = engine.executor(label)
        try:
            devices = engine.gpu_devices(ex)
        except CosmoskitError:
            devices = None
        total += len(slots_for(devices, 1, ex.concurrency()).groups)
    return max(1, total)


def busy_seconds(
    engine: Engine, active: list[BatchRecord], runs: dict[str, RunRecord], prompts: dict[str, PromptRecord]
) -> list[float]:
    """Estimated seconds left on each slot a batch holds now (staged batches add to the one they follow)."""
    now = timeutil.parse(timeutil.now())
    left: dict[str, float] = {}
    for batch in active:
        if batch["state"] not in ("staging", "running"):
            continue
        seconds = estimated_seconds(engine, batch, runs, prompts) or 0.0
        since = batch.get("started")
        elapsed = (now - timeutil.parse(since)).total_seconds() if since else 0.0
        left[batch["id"]] = max(0.0, seconds - elapsed)
    for batch in active:
        after = batch.get("after")
        if batch["state"] == "staged" and after in left:
            left[after] += estimated_seconds(engine, batch, runs, prompts) or 0.0
    return list(left.values())
