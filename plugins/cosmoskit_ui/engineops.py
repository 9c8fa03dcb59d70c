"""The plan of the queue (and of a sweep not yet submitted) as typed records the pages render.

The queue's plan is ``Engine.plan``'s, for every strategy; a sweep's estimate plans runs that
are not in the ledger yet with the same strategy and cost model, so the page can show the GPU
time before anything is queued.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from cosmoskit import api
from cosmoskit.api import CostModel, Engine, Item, PromptRecord, QueuePlan, RunRecord


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


def from_core(plan: QueuePlan) -> QueueView:
    """``Engine.plan``'s answer as the page's records."""
    model = plan.model
    batches = [PlannedBatch(n, b.run_ids, sorted(b.controls), model.batch_seconds(b.items, b.controls),
                            model.single_seconds(b.items)) for n, b in enumerate(plan.batches, 1)]
    estimates = {p.run["id"]: Estimate(p.batch + 1, p.start_seconds, p.finish_seconds) for p in plan.runs}
    return QueueView(plan.strategy, batches, float(plan.summary.get("gpu_seconds") or 0.0),
                     float(plan.summary.get("one_at_a_time_seconds") or 0.0), estimates)


def queue_views(engine: Engine) -> list[QueueView]:
    """The queue planned by every strategy, the configured one first (``Engine.plan`` settles orphaned
    batches first, which may ask a host: call this off the request path)."""
    default = str(engine.settings.get("batching.strategy"))
    views = []
    for name in [default, *[n for n in api.strategy_names() if n != default]]:
        try:
            views.append(from_core(engine.plan(name)))
        except api.CosmoskitError as exc:
            views.append(QueueView(name, [], 0.0, 0.0, error=str(exc)))
        except Exception as exc:  # a strategy plugin's bug is shown on the page, not a dead planner
            views.append(QueueView(name, [], 0.0, 0.0, error=f"{type(exc).__name__}: {exc}"))
    return views
