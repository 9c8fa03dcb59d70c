from __future__ import annotations

from typing import Any, Optional

import typer

from cosmoskit._cli import complete
from cosmoskit._cli.common import FORMAT_OPTION, JSON_OPTION, QUIET_OPTION

app = typer.Typer(help="The queue: list, plan, pause, resume, cancel, retry.", no_args_is_help=True)


def _plan(strategy: str | None) -> Any:
    from cosmoskit._core import context

    engine = context.engine()
    try:
        return engine.plan(strategy)
    finally:
        engine.close()


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


MODEL_OPTION = typer.Option(
    None,
    "--model",
    "-m",
    help="Only the runs of this model (transfer1, transfer2.5, cosmos3-nano …); estimates still count the whole queue.",
    autocompletion=complete.models,
)


@app.command("list")
def list_(
    strategy: Optional[str] = typer.Option(
        None,
        "--strategy",
        help="Plan with this strategy (default: batching.strategy).",
        autocompletion=complete.strategies,
    ),
    model: Optional[str] = MODEL_OPTION,
    json_: bool = JSON_OPTION,
    fmt: Optional[str] = FORMAT_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Queued runs in the order they will run, with their model and estimated start and finish from the cost model."""
    from cosmoskit._cli import output

    output.use_format(fmt)
    json_ = json_ or fmt == "json"
    planned = _plan(strategy)
    _check_model(model)
    if quiet:
        output.ids(p.run["id"] for p in planned.runs if model is None or p.model == model)
        return
    rows = [
        {
            "position": pos,
            "id": p.run["id"],
            "prompt": p.run.get("prompt_id"),
            "operation": p.run["operation"],
            "model": p.model,
            "priority": p.run.get("priority", 0),
            "controls": p.controls,
            "batch": p.batch + 1,
            "estimated_start_s": round(p.start_seconds, 1),
            "estimated_finish_s": round(p.finish_seconds, 1),
            "attempts": p.run.get("attempts", 0),
            "last_error": p.run.get("error"),
        }
        for pos, p in enumerate(planned.runs, 1)
        if model is None or p.model == model
    ]
    paused, running, slots = planned.paused, planned.running, planned.slots
    if json_:
        output.emit_json({"paused": paused, "running_batches": [b["id"] for b in running], "queue": rows})
        return
    if paused:
        output.warn("The queue is paused: workers claim nothing until `cosmoskit queue resume`.")
    if running:
        output.say(f"{len(running)} batch(es) running: " + ", ".join(b["id"] for b in running))
    if not rows:
        output.say("The queue is empty.")
        return
    output.table(
        None,
        ("#", "run", "model", "prio", "controls", "batch", "starts in", "done in"),
        (
            (
                r["position"],
                r["id"],
                r["model"],
                r["priority"],
                ",".join(r["controls"]),
                r["batch"],
                _minutes(r["estimated_start_s"]),
                _minutes(r["estimated_finish_s"]),
            )
            for r in rows
        ),
    )
    output.say(
        f"[dim]Estimates from each model's cost model (docs/cost-model.md) on {slots} GPU slot(s), "
        "after what runs now.[/dim]"
    )


@app.command("plan")
def plan_(
    strategy: Optional[str] = typer.Option(
        None,
        "--strategy",
        help="Strategy to plan with (default: batching.strategy).",
        autocompletion=complete.strategies,
    ),
    model: Optional[str] = MODEL_OPTION,
    json_: bool = JSON_OPTION,
) -> None:
    """The batches a worker would launch now, per GPU slot with estimated start and finish: when the queue
    ends (the makespan) against its lower bound, the GPU time, and the speed-ups."""
    from cosmoskit._cli import output
    from cosmoskit._core.estimate import batch_seconds, single_seconds, summary

    planned_queue = _plan(strategy)
    _check_model(model)
    name, cost, sched = planned_queue.strategy, planned_queue.model, planned_queue.schedule
    model_of = {p.batch: p.model for p in planned_queue.runs}
    placed = list(enumerate(sched.placed))
    chosen = [(n, p) for n, p in placed if model is None or model_of.get(n) == model]
    total = planned_queue.summary if model is None else summary([p.batch for _, p in chosen], cost)
    planned = [
        {
            "batch": n + 1,
            "slot": p.slot + 1,
            "start_seconds": round(p.start, 1),
            "finish_seconds": round(p.finish, 1),
            "model": model_of.get(n, ""),
            "runs": p.batch.run_ids,
            "controls": sorted(p.batch.controls),
            "gpu_seconds": round(batch_seconds(p.batch, cost), 1),
            "one_at_a_time_seconds": round(single_seconds(p.batch, cost), 1),
        }
        for n, p in chosen
    ]
    figures = {
        "objective": sched.objective,
        "slots": sched.slots,
        "makespan_seconds": round(sched.makespan, 1),
        "lower_bound_seconds": round(sched.lower_bound, 1),
        "serial_seconds": round(sched.serial_seconds, 1),
        "wall_speedup": round(sched.speedup, 3),
        "splits": sched.splits,
        "busy_slots_seconds": [round(b, 1) for b in sched.busy_for],
    }
    if json_:
        output.emit_json({"strategy": name, **total, "batch_count": total["batches"], **figures, "batches": planned})
        return
    if not planned:
        output.say("The queue is empty.")
        return
    output.table(
        f"plan ({name}, {sched.objective}, {sched.slots} slot(s))",
        ("slot", "batch", "model", "runs", "controls", "starts in", "done in", "GPU time", "alone"),
        (
            (
                p["slot"],
                p["batch"],
                p["model"],
                len(p["runs"]),
                ",".join(p["controls"]),
                _minutes(p["start_seconds"]),
                _minutes(p["finish_seconds"]),
                _minutes(p["gpu_seconds"]),
                _minutes(p["one_at_a_time_seconds"]),
            )
            for p in sorted(planned, key=lambda p: (p["slot"], p["start_seconds"]))
        ),
    )
    ratio = sched.makespan / sched.lower_bound if sched.lower_bound > 0 else 1.0
    split = f" ({sched.splits} more from splitting big ones across idle slots)" if sched.splits else ""
    output.say(
        f"{total['runs']} runs in {total['batches']} batches on {sched.slots} slot(s){split}: the queue ends in "
        f"{_minutes(sched.makespan)} (no plan can end before {_minutes(sched.lower_bound)}: {ratio:.2f}x of it), "
        f"{sched.speedup:.1f}x sooner than one slot running one run at a time."
    )
    output.say(
        f"GPU time {_minutes(total['gpu_seconds'])} against {_minutes(total['one_at_a_time_seconds'])} one at a time "
        f"(speed-up {total['speedup']:.2f}x)."
    )


def _check_model(model: str | None) -> None:
    """A --model that no loaded plugin runs is a mistake, not an empty queue."""
    if model is None:
        return
    from cosmoskit._core import plugins
    from cosmoskit._core.errors import CosmoskitError

    known = {cls.model or cls.name for cls in plugins.get_operations().values()}
    if model not in known:
        raise CosmoskitError(f"unknown model {model!r}; known: {', '.join(sorted(known))}")


def _set_paused(value: bool) -> None:
    from cosmoskit._cli import output
    from cosmoskit._core import context

    engine = context.engine()
    try:
        engine.pause() if value else engine.resume()
    finally:
        engine.close()
    output.say("Queue paused: workers finish what runs and claim nothing new." if value else "Queue resumed.")


@app.command("pause")
def pause() -> None:
    """Stop workers from claiming queued runs (kept in the ledger; running batches go on)."""
    _set_paused(True)


@app.command("resume")
def resume() -> None:
    """Let workers claim queued runs again."""
    _set_paused(False)


@app.command("cancel")
def cancel(
    runs: list[str] = typer.Argument(..., help="Runs (ids or prefixes).", autocompletion=complete.runs),
    json_: bool = JSON_OPTION,
) -> None:
    """Cancel runs: queued ones at once, running ones by stopping their batch."""
    from cosmoskit._cli import output
    from cosmoskit._core import context

    engine = context.engine()
    try:
        results = [engine.cancel(r) for r in runs]
    finally:
        engine.close()
    if json_:
        output.emit_json(results)
        return
    for r in results:
        output.say(f"{r['id']}: " + ("stop requested" if r.get("stopping") else "cancelled"))


@app.command("retry")
def retry(
    runs: list[str] = typer.Argument(
        ..., help="Failed or cancelled runs (ids or prefixes).", autocompletion=complete.runs
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Put failed or cancelled runs back in the queue, with fresh attempts."""
    from cosmoskit._cli import output
    from cosmoskit._core import context

    engine = context.engine()
    try:
        done = engine.retry(runs)
    finally:
        engine.close()
    if json_:
        output.emit_json(done)
        return
    output.say(f"Requeued {', '.join(r['id'] for r in done)}.")
