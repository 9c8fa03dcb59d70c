"""The figures at the top of the report: runs by status, GPU hours by operation, batching speed-up.

See docs/report.md for what each figure measures.

GPU time of a batch = (finished - started) x GPUs it used (the largest
``num_gpus`` among its runs, else 1).  When the report shows only some runs
(``--prompt``, ``--status``, ``--since``), a batch counts with the share of its
runs that are shown.

Batching speed-up = estimated GPU time one run at a time / GPU time spent.
The spent time is measured.  The one-at-a-time time is estimated per batch by
scaling its measured time with the cost model's ratio for the runs that ended
in that batch::

    alone_b = T_b x  sum_r cost([r] alone, r's own controls)  /  cost(those runs together, the batch's controls)

so one model load paid for N runs is credited with the N - 1 loads it saved,
in the batch's own measured seconds.  Batches whose runs were all retried
elsewhere (a crash) add to the time spent and to nothing else: wasted work
lowers the figure.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cosmoskit.api import RUN_STATUSES, seconds_between


def status_counts(runs: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(RUN_STATUSES, 0)
    for run in runs:
        counts[run["status"]] = counts.get(run["status"], 0) + 1
    return {k: v for k, v in counts.items() if v}


def batch_gpus(batch: dict[str, Any], runs_by_id: dict[str, dict[str, Any]]) -> int:
    gpus = [int((runs_by_id[r].get("params") or {}).get("num_gpus") or 1) for r in batch.get("runs") or []
            if r in runs_by_id]
    return max(gpus or [1])


def compute(selected: list[dict[str, Any]], all_runs: dict[str, dict[str, Any]],
            batches: dict[str, dict[str, Any]],
            cost_ratio: Callable[[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]], float] | None
            ) -> dict[str, Any]:
    """``cost_ratio(batch, members, finished_here)`` → modelled one-at-a-time / together, or raises."""
    chosen = {r["id"] for r in selected}
    by_op: dict[str, dict[str, float]] = {}
    spent = alone = 0.0
    running = 0
    modelled = 0
    for batch in batches.values():
        members = [all_runs[r] for r in batch.get("runs") or [] if r in all_runs]
        shown = [r for r in members if r["id"] in chosen]
        if not shown:
            continue
        seconds = seconds_between(batch.get("started"), batch.get("finished"))
        if seconds is None:
            if batch.get("started"):
                running += 1
            continue
        share = len(shown) / len(members)
        gpu_seconds = max(0.0, seconds) * batch_gpus(batch, all_runs) * share
        op = batch.get("operation") or (members[0]["operation"] if members else "?")
        row = by_op.setdefault(op, {"batches": 0, "runs": 0, "gpu_seconds": 0.0})
        row["batches"] += share
        row["runs"] += len(shown)
        row["gpu_seconds"] += gpu_seconds
        spent += gpu_seconds
        here = [r for r in members if r.get("batch_id") == batch["id"]]
        if not here:
            continue  # every run retried elsewhere: time spent for nothing
        ratio = 1.0
        if cost_ratio is not None:
            try:
                ratio = cost_ratio(batch, members, here)
                modelled += 1
            except Exception:
                ratio = 1.0
        alone += gpu_seconds * ratio
    for row in by_op.values():
        row["gpu_hours"] = row["gpu_seconds"] / 3600
        row["batches"] = round(row["batches"], 2)
    batch_ids = {r.get("batch_id") for r in selected if r.get("batch_id")}
    launched = [r for r in selected if r.get("batch_id")]
    return {
        "runs": len(selected),
        "by_status": status_counts(selected),
        "gpu": dict(sorted(by_op.items())),
        "gpu_seconds": spent,
        "gpu_hours": spent / 3600,
        "running_batches": running,
        "one_at_a_time_seconds": alone,
        "speedup": (alone / spent) if spent > 0 else None,
        "batches_modelled": modelled,
        "mean_runs_per_batch": (len(launched) / len(batch_ids)) if batch_ids else None,
    }


def cost_ratio_from_settings(settings: Any, prompts: dict[str, dict[str, Any]]) -> Callable[..., float] | None:
    """The cost model's one-at-a-time / together ratio for a batch, from the operations' own view of each run
    (its control networks, chunks, steps and work) under its model's own cost model."""
    try:
        from cosmoskit import api
        from cosmoskit.api import CostModel, Item

        model = CostModel.from_settings(settings)
    except Exception:
        return None
    operations: dict[str, Any] = {}

    def item(run: dict[str, Any]) -> Item:
        name = run["operation"]
        if name not in operations:
            operations[name] = api.operation_class(name)(settings)
        op = operations[name]
        prompt = prompts.get(run.get("prompt_id") or "")
        return Item(run_id=run["id"], group=(name,), controls=frozenset(op.controls(run)),
                    chunks=op.chunks(run, prompt), steps=op.steps(run), priority=0, created=run.get("created") or "",
                    work=float(op.work(run, prompt)))

    def ratio(batch: dict[str, Any], members: list[dict[str, Any]], here: list[dict[str, Any]]) -> float:
        controls = frozenset().union(*(item(r).controls for r in members))
        items = [item(r) for r in here]
        own = model
        if members:  # a batch is of one operation: priced by its model's own cost model
            name = members[0]["operation"]
            if name not in operations:
                operations[name] = api.operation_class(name)(settings)
            own = operations[name].cost_model(model)
        together = own.batch_seconds(items, controls)
        return own.single_seconds(items) / together if together > 0 else 1.0

    return ratio
