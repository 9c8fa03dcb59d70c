"""``cosmoskit upscale``, ``enhance`` and ``demo`` (Transfer 1's; `transfer` itself is the core's, for every model)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import typer

JSON_OPTION = typer.Option(False, "--json", help="Output as JSON.")
EXECUTOR_OPTION = typer.Option(None, "--executor", "-e",
                               help="Executor from cosmoskit.yaml (default: default_executor).")
QUEUE_OPTION = typer.Option(False, "--queue", help="Only queue the runs; a worker runs them.")
PRIORITY_OPTION = typer.Option(0, "--priority", help="Queue priority: higher runs first.")
DRY_RUN_OPTION = typer.Option(False, "--dry-run", help="Write and show the spec files and command; run nothing.")
LOG_OPTION = typer.Option(False, "--log", help="Print the model's log while it runs.")


def _submit(operation: str, prompt_ids: Sequence[str | None], params: dict[str, Any], *, priority: int,
            extra: dict[str, Any] | None = None, executor: str | None, queue: bool, dry_run: bool, json_: bool,
            show_log: bool = False) -> None:
    """Validate the runs, then dry-run, queue or run them now: the engine's one submit path."""
    from cosmoskit import api

    engine = api.engine()
    try:
        sub = engine.submit(operation, prompt_ids, params, priority=priority, extra=extra, executor=executor,
                            show_log=show_log, quiet=json_, mode="dry-run" if dry_run else "queue" if queue else "now")
    finally:
        engine.close()
    api.show_submission(sub, engine.home, json_=json_)


def register(app: typer.Typer) -> None:
    @app.command("upscale")
    def upscale(
        from_run: Optional[str] = typer.Option(None, "--from-run", help="A completed transfer run to upscale."),
        video: Optional[Path] = typer.Option(None, "--video", help="Any video file to upscale."),
        weight: Optional[float] = typer.Option(None, "--weight", help="Upscale control weight, 0..1."),
        prompt: Optional[str] = typer.Option(None, "--prompt", help="Optional guiding prompt."),
        executor: Optional[str] = EXECUTOR_OPTION,
        queue: bool = QUEUE_OPTION,
        priority: int = PRIORITY_OPTION,
        dry_run: bool = DRY_RUN_OPTION,
        show_log: bool = LOG_OPTION,
        json_: bool = JSON_OPTION,
    ) -> None:
        """Upscale a finished run or a video 3x with the Cosmos 4K upscaler."""
        from cosmoskit import api
        from cosmoskit.api import CosmoskitError

        if bool(from_run) == bool(video):
            raise CosmoskitError("give exactly one of --from-run RUN or --video PATH")
        if weight is not None and not 0 <= weight <= 1:  # the option's own name, not the spec field's
            raise CosmoskitError(f"--weight must be between 0 and 1, not {weight:g}")
        params: dict[str, Any] = {"control_weight": weight, "prompt": prompt}
        prompt_id = None
        extra: dict[str, Any] = {}
        if from_run:
            with api.ledger().read() as tx:
                source = tx.get_run(from_run)
            if source["operation"] != "transfer" or source["status"] != "completed":
                raise CosmoskitError(f"run {source['id']} is a {source['status']} {source['operation']}; "
                                     f"upscale takes a completed transfer")
            out = (source.get("outputs") or {}).get("output.mp4")
            if not out:
                raise CosmoskitError(f"run {source['id']} has no output.mp4")
            params.update(video=str(api.home() / out), source_run=source["id"])
            prompt_id, extra = source["prompt_id"], {"parent_run": source["id"]}
        else:
            params["video"] = str(video)
        _submit("upscale", [prompt_id], params, priority=priority, extra=extra, executor=executor, queue=queue,
                dry_run=dry_run, json_=json_, show_log=show_log)

    @app.command("enhance")
    def enhance(
        prompts: list[str] = typer.Argument(..., help="Prompt ids or prefixes."),
        overwrite: bool = typer.Option(False, "--overwrite",
                                       help="Replace the prompt's text (the old one stays in its history) "
                                            "instead of making a new prompt."),
        executor: Optional[str] = EXECUTOR_OPTION,
        queue: bool = QUEUE_OPTION,
        priority: int = PRIORITY_OPTION,
        dry_run: bool = DRY_RUN_OPTION,
        show_log: bool = LOG_OPTION,
        json_: bool = JSON_OPTION,
    ) -> None:
        """Enrich prompts with the Cosmos prompt upsampler (a new prompt each, linked to its parent)."""
        _submit("enhance", prompts, {"overwrite": overwrite}, priority=priority, executor=executor, queue=queue,
                dry_run=dry_run, json_=json_, show_log=show_log)

    @app.command("demo")
    def demo(
        folder: Path = typer.Option(Path("cosmoskit-demo"), "--dir", help="Project folder the demo creates and uses."),
        json_: bool = JSON_OPTION,
    ) -> None:
        """Try everything on this machine: sample videos, three prompts, a batch per model, an upscale, an enhance (CPU emulator)."""  # noqa: E501
        from cosmoskit_cosmos.demo import run_demo

        run_demo(folder, json_=json_)
