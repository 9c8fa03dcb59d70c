"""The engine calls the UI makes, and the plan of the queue as typed records the pages render.

Everything the UI changes goes through ``api.Engine`` (pause, retry, priority, rating, deletion,
submit, cancel, launch), exactly as a third-party plugin would: the command line sees the same
ledger at once, and the other way round.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from cosmoskit import api
from cosmoskit.api import CostModel, Engine, Item, PromptRecord, RunRecord


@dataclass(frozen=True)
class PlannedBatch:
    index: int  # 1-based, in launch order
    run_ids: list[str]
    controls: list[str]
    gpu_seconds: float
    alone_seconds: float


@dataclass(frozen=True)
class Estimate:
    batch: int  # 1-based
    start_s: float  # seconds from now
    finish_s: float


@dataclass(frozen=True)
class QueueView:
    """One strategy's plan of the queued runs: batches, GPU time, speed-up, each run's estimated start/finish."""

    strategy: str
    batches: list[PlannedBatch]
    gpu_seconds: float
    alone_seconds: float
    estimates: dict[str, Estimate] = field(default_factory=dict)
    error: str | None = None  # the strategy could not plan (a plugin's fault): shown, not raised

    @property
    def runs(self) -> int:
        return sum(len(b.run_ids) for b in self.batches)

    @property
    def speedup(self) -> float:
        return self.alone_seconds / self.gpu_seconds if self.gpu_seconds > 0 else 1.0


def items_for(engine: Engine, runs: list[RunRecord], prompts: dict[str, PromptRecord]) -> list[Item]:
    """Each run as the planner sees it (the operation says what may share a load and what it costs)."""
    items = []
    for run in runs:
        op = engine.operation(run["operation"])
        prompt = prompts.get(run.get("prompt_id") or "")
        items.append(Item(run_id=run["id"], group=op.batch_key(run, prompt), controls=frozenset(op.controls(run)),
                          chunks=op.chunks(run, prompt), steps=op.steps(run), priority=int(run.get("priority") or 0),
                          created=run["created"], batchable=op.batchable, max_controls=run.get("max_controls")))
    return items


def plan_runs(engine: Engine, runs: list[RunRecord], prompts: dict[str, PromptRecord], strategy: str,
              slots: int = 1) -> QueueView:
    """Plan ``runs`` (queued, or a sweep about to be submitted) with ``strategy``; estimate by list scheduling."""
    model = CostModel.from_settings(engine.settings)
    try:
        items = items_for(engine, runs, prompts)
        planned = api.strategy_class(strategy)().plan(items, model) if items else []
    except Exception as exc:  # a strategy plugin's failure is shown on the page, never a 500
        return QueueView(strategy, [], 0.0, 0.0, error=f"{type(exc).__name__}: {exc}")
    batches = []
    estimates: dict[str, Estimate] = {}
    free = [0.0] * max(1, slots)
    heapq.heapify(free)
    for n, b in enumerate(planned, 1):
        batches.append(PlannedBatch(n, b.run_ids, sorted(b.controls), model.batch_seconds(b.items, b.controls),
                                    model.single_seconds(b.items)))
        t = heapq.heappop(free) + model.load_seconds(b.controls)
        for item in b.items:
            start = t
            t += model.run_seconds(item, b.controls)
            estimates[item.run_id] = Estimate(n, start, t)
        heapq.heappush(free, t)
    return QueueView(strategy, batches, sum(b.gpu_seconds for b in batches), sum(b.alone_seconds for b in batches),
                     estimates)


def queue_views(engine: Engine, runs: list[RunRecord], prompts: dict[str, PromptRecord]) -> list[QueueView]:
    """The queue planned by every strategy, the configured one first."""
    default = str(engine.settings.get("batching.strategy"))
    slots = len(engine.settings.served_executors())
    names = [default, *[n for n in api.strategy_names() if n != default]]
    return [plan_runs(engine, runs, prompts, name, slots) for name in names]


# ---------------------------------------------------------------- queue and run changes
def set_paused(engine: Engine, value: bool) -> None:
    if value:
        engine.pause()
    else:
        engine.resume()


def retry(engine: Engine, run_ids: list[str]) -> list[RunRecord]:
    result: list[RunRecord] = engine.retry(run_ids)
    return result


def set_priority(engine: Engine, run_ids: list[str], priority: int) -> list[RunRecord]:
    result: list[RunRecord] = engine.set_priority(run_ids, priority)
    return result


def rate(engine: Engine, run_id: str, stars: int | None, note: str | None) -> RunRecord:
    result: RunRecord = engine.rate(run_id, stars=stars, note=note)
    return result


def cancel(engine: Engine, target: str) -> dict[str, Any]:
    result: dict[str, Any] = engine.cancel(target)
    return result
