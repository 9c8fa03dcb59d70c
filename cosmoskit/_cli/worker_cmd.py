from __future__ import annotations

from typing import Optional

import typer

from cosmoskit._cli import complete


def worker(
    host: Optional[list[str]] = typer.Option(
        None,
        "--host",
        help="Executor(s) to serve (default: every configured one).",
        autocompletion=complete.executors,
    ),
    strategy: Optional[str] = typer.Option(
        None, "--strategy", help="Batching strategy (default: batching.strategy).", autocompletion=complete.strategies
    ),
    once: bool = typer.Option(False, "--once", help="Stop when the queue is empty and nothing runs."),
    json_: bool = typer.Option(False, "--json", help="One JSON object per event on stdout instead of log lines."),
) -> None:
    """Run the queue: plan batches, launch one per free GPU slot, stage the next behind each, follow them.

    Ctrl-C leaves running batches to finish where they run; staged ones go back to the queue."""
    import sys

    from cosmoskit._core import context
    from cosmoskit._core.worker import Worker

    def log(text: str) -> None:
        from datetime import datetime

        if json_:
            from cosmoskit._cli.output import emit_json_line

            emit_json_line({"time": datetime.now().astimezone().isoformat(), "event": "worker", "message": text})
            return
        sys.stderr.write(f"{datetime.now():%H:%M:%S} {text}\n")
        sys.stderr.flush()

    w = Worker(context.settings(), context.ledger(), executors=host or None, strategy=strategy, log=log)
    log(f"worker serving {', '.join(w.places)} with strategy {strategy or context.settings().get('batching.strategy')}")
    w.run(once=once)
    log(f"worker done: launched {len(w.launched)} batch(es)")
    if json_:
        from cosmoskit._cli.output import emit_json_line

        emit_json_line(
            {
                "event": "done",
                "launched": w.launched,
                "runs": [{"id": r["id"], "status": r["status"]} for r in w.outcomes()],
            }
        )
    if w.stuck:
        from cosmoskit._core.errors import CosmoskitError

        raise CosmoskitError(
            f"stopped with runs still queued: every executor keeps failing to launch ({w.stuck})",
            hint="fix that, then run the worker again; the runs wait in the queue",
        )
    if once:
        from cosmoskit._cli.submission import not_completed

        problem = not_completed(w.outcomes())
        if problem is not None:
            raise problem
