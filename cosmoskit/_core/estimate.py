"""Estimated start and finish of queued runs, from the cost model and the executors' slots."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from cosmoskit._core.costmodel import CostModel
from cosmoskit._core.strategy import Batch


@dataclass
class Estimate:
    run_id: str
    batch: int  # index of its planned batch
    start: float  # seconds from now
    finish: float


def schedule(batches: list[Batch], model: CostModel, slots: int, busy_for: list[float] | None = None) -> list[Estimate]:
    """List scheduling: each planned batch goes to the slot that frees first, in plan order."""
    free = sorted((busy_for or []) + [0.0] * max(0, slots - len(busy_for or [])))[: max(1, slots)] or [0.0]
    heapq.heapify(free)
    out: list[Estimate] = []
    for index, batch in enumerate(batches):
        at = heapq.heappop(free)
        t = at + model.load_seconds(batch.controls)
        for item in batch.items:
            start = t
            t += model.run_seconds(item, batch.controls)
            out.append(Estimate(item.run_id, index, start, t))
        heapq.heappush(free, t)
    return out


def summary(batches: list[Batch], model: CostModel) -> dict[str, Any]:
    items = [i for b in batches for i in b.items]
    planned = sum(model.batch_seconds(b.items, b.controls) for b in batches)
    alone = model.single_seconds(items)
    return {
        "runs": len(items),
        "batches": len(batches),
        "gpu_seconds": planned,
        "one_at_a_time_seconds": alone,
        "speedup": (alone / planned) if planned else 1.0,
    }
