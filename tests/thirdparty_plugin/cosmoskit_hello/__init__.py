"""A third-party cosmoskit plugin: the ``everything`` batching strategy and a ``hello`` command."""
from __future__ import annotations

import cosmoskit
from cosmoskit._core.strategy import Batch, BatchingStrategy


class Everything(BatchingStrategy):
    """One batch per group and control set, as large as the model allows."""

    name = "everything"
    description = "as few batches as possible, ignoring cost"

    def plan(self, items, model):
        groups = {}
        for item in items:
            key = (item.group, item.controls) if item.batchable else (item.group, item.controls, item.run_id)
            groups.setdefault(key, []).append(item)
        batches = []
        for (_, controls, *_), members in groups.items():
            size = max(1, getattr(model, "max_runs", len(members)) or len(members))
            for i in range(0, len(members), size):
                batches.append(Batch(members[i:i + size], controls))
        return self.order(batches)


@cosmoskit.hookimpl
def register_strategies(register):
    register(Everything)


@cosmoskit.hookimpl
def register_commands(app):
    import typer

    @app.command("hello")
    def hello(name: str = typer.Argument("world", help="Who to greet.")) -> None:
        """Say hello (from the cosmoskit-hello plugin)."""
        from cosmoskit._core import plugins

        strategies = ", ".join(sorted(plugins.get_strategies()))
        typer.echo(f"Hello, {name}! strategies: {strategies}")
