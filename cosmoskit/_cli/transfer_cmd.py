"""``cosmoskit transfer``: photoreal variations of prompts with any transfer model, sweeps included.

The command belongs to no model: ``--model`` (else ``default_model``) picks the operation of kind
``transfer`` that a model plugin registered, and the operation validates what it is given.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from cosmoskit._cli import complete
from cosmoskit._cli.common import JSON_OPTION

EXECUTOR_OPTION = typer.Option(
    None,
    "--executor",
    "-e",
    help="Executor from cosmoskit.yaml (default: default_executor).",
    autocompletion=complete.executors,
)


def transfer(
    prompts: list[str] = typer.Argument(
        ..., help="Prompt ids, prefixes or names; their runs share model loads.", autocompletion=complete.prompts
    ),
    model: Optional[str] = typer.Option(
        None,
        "--model",
        "-m",
        help="transfer1, transfer2.5, cosmos3-nano, cosmos3-super … (default: default_model).",
        autocompletion=complete.models,
    ),
    weights: Optional[list[str]] = typer.Option(
        None, "--weights", "-w", help="Control weights, e.g. vis=0.3,edge=0.7; repeat for several weight sets."
    ),
    num_steps: Optional[str] = typer.Option(None, "--num-steps", help="Diffusion steps; a list sweeps (20,35)."),
    guidance: Optional[str] = typer.Option(None, "--guidance", help="Classifier-free guidance; a list sweeps."),
    seed: Optional[str] = typer.Option(None, "--seed", help="Random seed; a list or range sweeps (1,2,3 or 1-8)."),
    sigma_max: Optional[str] = typer.Option(None, "--sigma-max", help="Partial-denoise level; a list sweeps."),
    blur_strength: Optional[str] = typer.Option(None, "--blur-strength", help="vis preset (Transfer 1)."),
    canny_threshold: Optional[str] = typer.Option(None, "--canny-threshold", help="edge preset (Transfer 1)."),
    num_gpus: Optional[int] = typer.Option(None, "--num-gpus", help="Context-parallel GPUs."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p", help="KEY=VALUE for any other parameter."),
    executor: Optional[str] = EXECUTOR_OPTION,
    queue: bool = typer.Option(False, "--queue", help="Only queue the runs; a worker runs them."),
    priority: int = typer.Option(0, "--priority", help="Queue priority: higher runs first."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show how many runs, their batches and GPU time; run nothing."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before a large sweep."),
    show_log: bool = typer.Option(False, "--log", help="Print the model's log while it runs."),
    json_: bool = JSON_OPTION,
) -> None:
    """Make photoreal variations of prompts: each weight set × seed × … is a run; runs share model loads."""
    from cosmoskit._cli.common import confirm
    from cosmoskit._cli.submission import show_submission
    from cosmoskit._core import context, plugins
    from cosmoskit._core.errors import CosmoskitError
    from cosmoskit._core.params import parse_params
    from cosmoskit._core.sweep import count, parse_values, variations

    settings = context.settings()
    cls = plugins.operation_for("transfer", model or str(settings.get("default_model")))
    params: dict[str, Any] = parse_params(cls.name, cls.parameter_schema(), param or [])
    for key, value in (("blur_strength", blur_strength), ("canny_threshold", canny_threshold), ("num_gpus", num_gpus)):
        if value is not None:
            params[key] = value
    axes: dict[str, list[Any]] = {}
    if weights:
        if len(set(weights)) != len(weights):
            raise CosmoskitError("the same --weights set is given twice")
        axes["weights"] = list(weights)
    for key, option, text, kind in (
        ("num_steps", "--num-steps", num_steps, int),
        ("guidance", "--guidance", guidance, float),
        ("seed", "--seed", seed, int),
        ("sigma_max", "--sigma-max", sigma_max, float),
    ):
        if text is not None:
            axes[key] = parse_values(option, text, kind)
    total = count(len(prompts), axes)
    limit = int(settings.get("submit.confirm_above"))
    if total > limit and not dry_run:
        confirm(
            f"This makes {total} runs (more than submit.confirm_above = {limit}). Go on?",
            yes,
            action=f"start {total} runs",
            nothing="nothing was queued",
        )
    engine = context.engine()
    try:
        sub = engine.submit(
            cls.name,
            prompts,
            params,
            variations=variations(axes) if axes else None,
            priority=priority,
            executor=executor,
            show_log=show_log,
            quiet=json_,
            mode="dry-run" if dry_run else "queue" if queue else "now",
        )
    finally:
        engine.close()
    show_submission(sub, engine.home, json_=json_)
