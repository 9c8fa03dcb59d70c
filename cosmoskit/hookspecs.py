"""Every hook a cosmoskit plugin can implement.

Plugins contribute through ``register`` callbacks (as llm does): the core builds
the callback, calls the hook once per plugin, and rejects a name registered
twice, naming both plugins.  ``docs/plugins.md`` documents each hook; a test
keeps it in step with this module.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:
    import typer

hookspec = HookspecMarker("cosmoskit")
hookimpl = HookimplMarker("cosmoskit")


@hookspec
def register_operations(register: Callable[[Any], None]) -> None:
    """Register Operation classes (``transfer``, ``upscale``, ``enhance`` …).

    Call ``register(OperationClass)`` once per class.  An Operation validates a
    run's parameters, writes the model's input files for a batch, gives the
    command to run and maps produced files back to runs; see
    ``cosmoskit._core.operation.Operation``.
    """


@hookspec
def register_strategies(register: Callable[[Any], None]) -> None:
    """Register BatchingStrategy classes (``single``, ``strict``, ``mixed``, ``optimal`` …).

    Call ``register(StrategyClass)`` once per class.  A strategy turns the queued
    runs into an ordered list of batches; see ``cosmoskit._core.strategy.BatchingStrategy``.
    """


@hookspec
def register_executors(register: Callable[[Any], None]) -> None:
    """Register Executor classes, one per kind of place to run (``local``, ``ssh`` …).

    Call ``register(ExecutorClass)`` once per class.  ``executors:`` entries in
    ``cosmoskit.yaml`` name a class by its ``type_name``; see
    ``cosmoskit._core.executor.Executor``.
    """


@hookspec
def register_commands(app: "typer.Typer") -> None:
    """Add commands to the ``cosmoskit`` command line.

    ``app`` is the root ``typer.Typer``: use ``@app.command()`` or
    ``app.add_typer(sub_app, name=...)``.  Keep heavy imports inside the
    command functions so that ``cosmoskit --help`` stays fast.
    """


@hookspec
def run_finished(run: dict[str, Any]) -> None:
    """Called once after a run reaches ``completed``, ``failed`` or ``cancelled``.

    ``run`` is a copy of the run record from the ledger (its ``outputs`` are
    paths inside ``outputs/run_<id>/``).  Use it to notify a chat, copy
    outputs, …; an exception here is logged and never fails the run.
    """
