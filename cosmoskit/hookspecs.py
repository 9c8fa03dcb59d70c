"""Every hook a cosmoskit plugin can implement.

Plugins contribute through ``register`` callbacks (as llm does): the core builds
the callback, calls the hook once per plugin, and rejects a name registered
twice, naming both plugins.  ``docs/plugins.md`` documents each hook; a test
keeps it in step with this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
    ``cosmoskit.api.Operation``.
    """


@hookspec
def register_strategies(register: Callable[[Any], None]) -> None:
    """Register BatchingStrategy classes (``single``, ``strict``, ``mixed``, ``optimal`` …).

    Call ``register(StrategyClass)`` once per class.  A strategy turns the queued
    runs into an ordered list of batches; see ``cosmoskit.api.BatchingStrategy``.
    """


@hookspec
def register_executors(register: Callable[[Any], None]) -> None:
    """Register Executor classes, one per kind of place to run (``local``, ``ssh`` …).

    Call ``register(ExecutorClass)`` once per class.  ``executors:`` entries in
    ``cosmoskit.yaml`` name a class by its ``name``; see
    ``cosmoskit.api.Executor``.  A class that leaves out a method the core
    calls is refused here, with the missing methods named.
    """


@hookspec
def register_runtimes(register: Callable[[Any], None]) -> None:
    """Register Runtime classes: how the launcher runs a model's command (``docker``, ``direct``, ``emulator`` …).

    Call ``register(RuntimeClass)`` once per class; ``model.runtime`` in
    ``cosmoskit.yaml`` picks one by ``name``.  See ``cosmoskit.api.Runtime``.
    """


@hookspec
def register_settings(register: Callable[[Any], None]) -> None:
    """Declare top-level sections of ``cosmoskit.yaml`` that this plugin owns.

    Call ``register(cosmoskit.api.Section(name, fields, description))`` once per
    section.  ``config show`` and ``config check`` cover it with file and line;
    ``cosmoskit.api.settings().section(name)`` returns it validated, defaults filled.
    Operations and runtimes declare their own sections through ``options``.
    """


@hookspec
def register_tables(register: Callable[[Any], None]) -> None:
    """Declare ledger tables this plugin keeps (its own file under ``ledger/plugins/``).

    Call ``register(cosmoskit.api.LedgerTable(name, description, migrations))`` once per
    table.  Inside a ledger transaction ``tx.plugin_table(name)`` reads and writes it
    under the same lock and the same all-or-nothing commit as the core's records;
    its migrations run once each, in order, and are recorded in the ledger.
    """


@hookspec
def register_commands(app: typer.Typer) -> None:
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
