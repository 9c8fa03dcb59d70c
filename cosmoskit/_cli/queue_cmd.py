from __future__ import annotations

from typing import Any, Optional

import typer

from cosmoskit._cli.common import JSON_OPTION

app = typer.Typer(help="The queue: list, plan, pause, resume, cancel, retry.", no_args_is_help=True)


def _planned(strategy: str | None) -> tuple[Any, ...]:
    from cosmoskit._core import context
    from cosmoskit._core.costmodel import CostModel
    from cosmoskit._core.planning import plan
    from cosmoskit._core.queries import queued

    engine = context.engine()
    engine.settle_orphans()
    with engine.ledger.read() as tx:
        runs, prompts = queued(tx)
        running = [dict(b) for b in tx.active_batches()]
        paused = bool((tx.meta_get("queue") or {}).get("paused"))
    batches = plan(engine, runs, prompts, strategy)
    model = CostModel.from_settings(engine.settings)
    engine.close()
    return engine, {r["id"]: r for r in runs}, batches, model, len(engine.settings.served_executors()), running, paused


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@app.command("list")
def list_(
    strategy: Optional[str] = typer.Option(
        None, "--strategy", help="Plan with this strategy (default: batching.strategy)."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Queued runs in the order they will run, with estimated start and finish from the cost model."""
    from cosmoskit._cli import output
    from cosmoskit._core.estimate import schedule

    _engine, runs, batches, model, slots, running, paused = _planned(strategy)
    estimates = schedule(batches, model, slots, busy_for=[0.0] * 0)
    rows = []
    for pos, est in enumerate(estimates, 1):
        run = runs[est.run_id]
        item = next(i for i in batches[est.batch].items if i.run_id == est.run_id)
        rows.append(
            {
                "position": pos,
                "run": run["id"],
                "prompt": run.get("prompt_id"),
                "operation": run["operation"],
                "priority": run.get("priority", 0),
                "controls": sorted(item.controls),
                "batch": est.batch + 1,
                "estimated_start_s": round(est.start, 1),
                "estimated_finish_s": round(est.finish, 1),
                "attempts": run.get("attempts", 0),
                "last_error": run.get("error"),
            }
        )
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
        ("#", "run", "operation", "prio", "controls", "batch", "starts in", "done in"),
        (
            (
                r["position"],
                r["run"],
                r["operation"],
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
        f"[dim]Estimates from the cost model (batching.cost), {slots} executor slot(s), ignoring running batches.[/dim]"
    )


@app.command("plan")
def plan_(
    strategy: Optional[str] = typer.Option(
        None, "--strategy", help="Strategy to plan with (default: batching.strategy)."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """The batches a worker would launch now, their GPU time, and the speed-up over one run at a time."""
    from cosmoskit._cli import output
    from cosmoskit._core.estimate import summary

    engine, _runs, batches, model, _slots, _running, _paused = _planned(strategy)
    name = strategy or engine.settings.get("batching.strategy")
    planned = [
        {
            "batch": n,
            "runs": b.run_ids,
            "controls": sorted(b.controls),
            "gpu_seconds": round(model.batch_seconds(b.items, b.controls), 1),
            "one_at_a_time_seconds": round(model.single_seconds(b.items), 1),
        }
        for n, b in enumerate(batches, 1)
    ]
    total = summary(batches, model)
    if json_:
        output.emit_json({"strategy": name, **total, "batches": planned})
        return
    if not planned:
        output.say("The queue is empty.")
        return
    output.table(
        f"plan ({name})",
        ("batch", "runs", "controls", "GPU time", "alone"),
        (
            (
                p["batch"],
                len(p["runs"]),
                ",".join(p["controls"]),
                _minutes(p["gpu_seconds"]),
                _minutes(p["one_at_a_time_seconds"]),
            )
            for p in planned
        ),
    )
    output.say(
        f"{total['runs']} runs in {total['batches']} batches: {_minutes(total['gpu_seconds'])} of GPU time "
        f"against {_minutes(total['one_at_a_time_seconds'])} one at a time (speed-up {total['speedup']:.2f}x)."
    )


def _set_paused(value: bool) -> None:
    from cosmoskit._cli import output
    from cosmoskit._core import context

    with context.ledger().transaction() as tx:
        state = dict(tx.meta_get("queue") or {})
        state["paused"] = value
        tx.meta_set("queue", state)
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
def cancel(runs: list[str] = typer.Argument(..., help="Runs (ids or prefixes)."), json_: bool = JSON_OPTION) -> None:
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
        output.say(f"{r['run']}: " + ("stop requested" if r.get("stopping") else "cancelled"))


@app.command("retry")
def retry(
    runs: list[str] = typer.Argument(..., help="Failed or cancelled runs (ids or prefixes)."), json_: bool = JSON_OPTION
) -> None:
    """Put failed or cancelled runs back in the queue, with fresh attempts."""
    from cosmoskit._cli import output
    from cosmoskit._core import context
    from cosmoskit._core.errors import CosmoskitError

    done = []
    with context.ledger().transaction() as tx:
        for text in runs:
            run = tx.get_run(text)
            if run["status"] not in ("failed", "cancelled"):
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
    if json_:
        output.emit_json(done)
        return
    output.say(f"Requeued {', '.join(r['id'] for r in done)}.")
