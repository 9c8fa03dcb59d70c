"""From queued runs to planned batches: the planner's view of runs, and validity of a plan."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cosmoskit._core import plugins
from cosmoskit._core.costmodel import CostModel, model_of
from cosmoskit._core.makespan import Pricing, Schedule, schedule
from cosmoskit._core.records import PromptRecord, RunRecord
from cosmoskit._core.strategy import Batch, BatchingStrategy, Item

if TYPE_CHECKING:
    from cosmoskit._core.engine import Engine


def items_for(
    engine: Engine, runs: list[RunRecord], prompts: dict[str, PromptRecord], base: CostModel | None = None
) -> list[Item]:
    """Each queued run as the planner sees it; the operation says what may share a load and what it costs."""
    base = base or CostModel.from_settings(engine.settings)
    costs: dict[str, CostModel] = {}
    items = []
    for run in runs:
        op = engine.operation(run["operation"])
        if op.name not in costs:
            costs[op.name] = op.cost_model(base)
        prompt = prompts.get(run.get("prompt_id") or "")
        items.append(
            Item(
                run_id=run["id"],
                group=op.batch_key(run, prompt),
                controls=frozenset(op.controls(run)),
                chunks=op.chunks(run, prompt),
                steps=op.steps(run),
                priority=int(run.get("priority") or 0),
                created=run["created"],
                batchable=op.batchable,
                max_controls=run.get("max_controls"),
                work=float(op.work(run, prompt)),
                cost=costs[op.name],
            )
        )
    return items


def valid(batch: Batch, model: CostModel) -> str | None:
    """Why a planned batch is not allowed, or None."""
    items = batch.items
    if not items:
        return "empty batch"
    if len({i.group for i in items}) != 1:
        return "mixes runs that cannot share a model load"
    if len({i.cost for i in items}) != 1:
        return "mixes runs priced by different cost models (different models)"
    if len(items) > 1 and not all(i.batchable for i in items):
        return "holds a run whose operation never batches"
    if len(items) > model.max_runs:
        return f"holds {len(items)} runs, more than {model.max_runs}"
    union = frozenset().union(*(i.controls for i in items))
    if not union <= batch.controls:
        return "carries fewer control networks than its runs need"
    if not model.fits(batch.controls) and len(items) > 1:
        return "its control networks do not fit the GPU's memory"
    caps = [i.max_controls for i in items if i.max_controls is not None]
    if caps and len(batch.controls) > min(caps) and len(items) > 1:
        return "exceeds the control networks a run may share after running out of memory"
    return None


def fewest(items: list[Item], model: CostModel) -> list[Batch]:
    """As few batches as the batching rules allow, in the order given (what a person who names the runs of
    one command means by "share one model load"): each run joins the open batch of its group while the
    union of controls still fits and no cap is crossed, else opens a new one."""
    open_: dict[Any, Batch] = {}
    done: list[Batch] = []
    for item in items:
        current = open_.get(item.group)
        if current is not None:
            grown = Batch([*current.items, item], current.controls | item.controls)
            if valid(grown, model) is None:
                open_[item.group] = grown
                continue
            done.append(current)
        open_[item.group] = Batch([item], item.controls)
    return [*done, *open_.values()]


def plan(
    engine: Engine,
    runs: list[RunRecord],
    prompts: dict[str, PromptRecord],
    strategy: str | None = None,
    *,
    fewest_batches: bool = False,
) -> list[Batch]:
    """The batches for these runs: by the strategy (the configured one unless named), or with
    ``fewest_batches`` by the rules alone, in as few model loads as they allow."""
    name = "fewest batches" if fewest_batches else strategy or engine.settings.get("batching.strategy")
    base = CostModel.from_settings(engine.settings)
    items = items_for(engine, runs, prompts, base)
    if not items:
        return []
    batches: list[Batch] = []
    parts = by_cost_model(items, base)
    # Each model is planned under its own cost model: runs of different models never share a batch (the
    # operation is part of every group), so planning the parts apart loses nothing and keeps `optimal`
    # exact for each.  Then the batches of every part are ordered together.
    for model, part in parts:
        if fewest_batches:
            batches += fewest(part, model)
        else:
            batches += plugins.get_strategy(name)().plan(part, model)
    seen = [i.run_id for b in batches for i in b.items]
    if sorted(seen) != sorted(i.run_id for i in items):
        raise RuntimeError(f"strategy {name!r} did not place every queued run exactly once")
    for b in batches:
        problem = valid(b, model_of(b, base))
        if problem:
            raise RuntimeError(f"strategy {name!r} planned an invalid batch: {problem}")
    if fewest_batches or len(parts) == 1:
        return batches
    return BatchingStrategy.order(batches)


def by_cost_model(items: list[Item], base: CostModel) -> list[tuple[CostModel, list[Item]]]:
    """The items split by the cost model they are priced with, in the order each first appears."""
    parts: dict[CostModel, list[Item]] = {}
    for item in items:
        parts.setdefault(item.cost if isinstance(item.cost, CostModel) else base, []).append(item)
    return list(parts.items())


def pricing(base: CostModel) -> Pricing:
    """The scheduler's view of the cost models: each batch and run priced by its own model's."""

    def own(item: Item) -> CostModel:
        return item.cost if isinstance(item.cost, CostModel) else base

    return Pricing(
        batch=lambda b: model_of(b, base).batch_seconds(b.items, b.controls),
        alone=lambda i: own(i).batch_seconds([i], i.controls),
        run=lambda i: own(i).run_seconds(i, i.controls),
        min_load=lambda i: own(i).load_seconds(frozenset()),
        max_runs=lambda i: own(i).max_runs,
    )


def schedule_for(
    engine: Engine,
    runs: list[RunRecord],
    prompts: dict[str, PromptRecord],
    strategy: str | None,
    slots: int,
    busy_for: list[float] | None = None,
) -> Schedule:
    """The strategy's batches for these runs, placed on ``slots`` GPU slots by ``batching.objective``
    (makespan.py)."""
    name = strategy or engine.settings.get("batching.strategy")
    batches = plan(engine, runs, prompts, name)
    return schedule(
        batches,
        pricing(CostModel.from_settings(engine.settings)),
        slots,
        busy_for=busy_for,
        objective=engine.settings.get("batching.objective"),
        exact=bool(getattr(plugins.get_strategy(name), "exact", False)),
    )
