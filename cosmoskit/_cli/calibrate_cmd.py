"""``cosmoskit calibrate``: the cost model fitted to this project's finished batches, per executor."""

from __future__ import annotations

from typing import Any, Optional

import typer

from cosmoskit._cli import complete
from cosmoskit._cli.common import JSON_OPTION


def calibrate(
    executor: Optional[str] = typer.Option(
        None, "--executor", "--host", help="Only this executor's batches.", autocompletion=complete.executors
    ),
    apply: bool = typer.Option(
        False, "--apply", help="Write the fitted values into cosmoskit.yaml (needs --executor when several fit)."
    ),
    json_: bool = JSON_OPTION,
) -> None:
    """Fit each model's cost parameters to the finished batches' own timings, beside the current values.

    The parameters: model load, per control network, per chunk and step, the control factor; each with the
    fit's error, and --apply writes them into cosmoskit.yaml."""
    from cosmoskit._cli import output
    from cosmoskit._core import context
    from cosmoskit._core.calibrate import apply as write
    from cosmoskit._core.calibrate import groups
    from cosmoskit._core.errors import CosmoskitError

    settings = context.settings()
    if executor is not None and executor not in settings.executor_names():
        raise CosmoskitError(f"no executor {executor!r}; known: {', '.join(settings.executor_names())}")
    engine = context.engine()
    try:
        found = groups(engine, executor)
    finally:
        engine.close()
    entries = [_entry(g) for g in found]
    fitted = [g for g in found if g.fit is not None]
    if apply:
        if not fitted:
            raise CosmoskitError("nothing to apply: no finished batch with the model's timings fits",
                                 hint="run some batches first; `cosmoskit calibrate` shows what it found")
        sections = [g.section for g in fitted]
        if len(set(sections)) != len(sections):
            raise CosmoskitError(
                "batches of one model ran on several executors: say which one's fit to apply with --executor"
            )
        if settings.config_path is None:
            raise CosmoskitError("no cosmoskit.yaml to write to", hint="`cosmoskit init` makes one")
        before = settings.config_path.read_text(encoding="utf-8")
        try:
            for g in fitted:
                assert g.fit is not None
                write(settings.config_path, g.section, {k: g.fit.fitted[k] for k in g.fit.free})
            context.reset()
            context.settings()  # the file must still be a valid configuration
        except Exception:
            settings.config_path.write_text(before, encoding="utf-8")
            context.reset()
            raise
    if json_:
        output.emit_json({"applied": apply, "fits": entries})
        return
    if not found:
        output.say("No finished batch with the model's timings yet" + (f" on {executor}." if executor else "."))
        return
    for g, e in zip(found, entries, strict=True):
        head = f"[bold]{g.executor}[/bold] {g.model} ({len(g.samples)} batch(es)) -> {g.section}"
        if g.fit is None:
            output.say(f"{head}: {output.escape(g.problem)}")
            continue
        output.say(head)
        output.table(
            None,
            ("parameter", "current", "fitted", "change"),
            (
                (
                    p["name"],
                    _num(p["current"]),
                    _num(p["fitted"]) if p["fitted_here"] else f"kept ({p['kept']})",
                    _change(p["current"], p["fitted"]) if p["fitted_here"] else "",
                )
                for p in e["parameters"]
            ),
        )
        output.say(
            f"  error of the fit: {e['error'] * 100:.1f} % on average, {e['worst'] * 100:.1f} % at worst "
            f"(the current values: {e['error_current'] * 100:.1f} %)"
        )
    if apply:
        output.say(f"Written to {settings.config_path}: the planner and every estimate use these values now.")
    elif fitted:
        output.say("[dim]`cosmoskit calibrate --apply` writes the fitted values into cosmoskit.yaml.[/dim]")


def _entry(g: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "executor": g.executor,
        "operation": g.operation,
        "model": g.model,
        "section": g.section,
        "batches": [s.batch for s in g.samples],
    }
    if g.fit is None:
        return {**entry, "problem": g.problem}
    fit = g.fit
    entry["parameters"] = [
        {
            "name": name,
            "current": fit.current[name],
            "fitted": fit.fitted[name],
            "fitted_here": name in fit.free,
            "kept": fit.kept.get(name, ""),
        }
        for name in fit.current
    ]
    entry.update(error=fit.error, worst=fit.worst, error_current=fit.error_current)
    return entry


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def _change(before: float, after: float) -> str:
    if before == 0:
        return "new" if after else ""
    return f"{(after - before) / before * 100:+.0f} %"
