"""Estimated start and finish of queued runs, from the cost model and the executors' slots."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from cosmoskit._core.costmodel import CostModel, model_of
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
        own = model_of(batch, model)  # each batch by its own model's cost model
        t = at + own.load_seconds(batch.controls)
        for item in batch.items:
            start = t
            t += own.run_seconds(item, batch.controls)
            out.append(Estimate(item.run_id, index, start, t))
        heapq.heappush(free, t)
    return out


def batch_seconds(batch: Batch, model: CostModel) -> float:
    """A planned batch's GPU time under its own model's cost model (``model``: the configured one)."""
    return model_of(batch, model).batch_seconds(batch.items, batch.controls)


def single_seconds(batch: Batch, model: CostModel) -> float:
    """Its runs' GPU time one at a time, under its own model's cost model."""
    return model_of(batch, model).single_seconds(batch.items)


def summary(batches: list[Batch], model: CostModel) -> dict[str, Any]:
    items = [i for b in batches for i in b.items]
    planned = sum(batch_seconds(b, model) for b in batches)
    alone = sum(single_seconds(b, model) for b in batches)
    return {
        "runs": len(items),
        "batches": len(batches),
        "gpu_seconds": planned,
        "one_at_a_time_seconds": alone,
        "speedup": (alone / planned) if planned else 1.0,
    }
