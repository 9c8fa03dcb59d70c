"""The public surface of cosmoskit: the only names a plugin imports.

Bundled plugins import from here and nowhere else in cosmoskit (a test checks
every module under ``plugins/``), so a third-party package can do whatever they
do.  Everything else in the package (``cosmoskit._core``, ``cosmoskit._cli``) is
private and may change in any release.  ``docs/plugins.md`` documents each name
below; a test keeps the two in step.

Names are imported on first use (PEP 562), so ``import cosmoskit.api`` costs
nothing and ``cosmoskit --help`` stays fast.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> "module:attribute" inside cosmoskit._core / cosmoskit._cli
_NAMES: dict[str, str] = {
    # -- plugins: hooks, errors, registries ------------------------------------------------
    "hookimpl": "cosmoskit.hookspecs:hookimpl",
    "CosmoskitError": "_core.errors:CosmoskitError",
    "Section": "_core.sections:Section",
    "operation_class": "_core.plugins:get_operation",
    "operation_names": "_core.plugins:operation_names",
    "strategy_class": "_core.plugins:get_strategy",
    "strategy_names": "_core.plugins:strategy_names",
    "executor_type_names": "_core.plugins:executor_type_names",
    "runtime_names": "_core.plugins:runtime_names",
    # -- operations ------------------------------------------------------------------------
    "Operation": "_core.operation:Operation",
    "Outcome": "_core.operation:Outcome",
    "BatchJob": "_core.batchjob:BatchJob",
    # -- executors -------------------------------------------------------------------------
    "Executor": "_core.executor:Executor",
    "PollResult": "_core.executor:PollResult",
    "Progress": "_core.executor:Progress",
    "model_options": "_core.executor:model_options",
    "ExecutorStatus": "_core.hoststatus:ExecutorStatus",
    "GPU": "_core.hoststatus:GPU",
    "HostJob": "_core.hoststatus:HostJob",
    "parse_nvidia_smi": "_core.hoststatus:parse_nvidia_smi",
    "NVIDIA_QUERY": "_core.hoststatus:NVIDIA_QUERY",
    "LOG": "_core.batchjob:LOG",
    "EXIT_CODE": "_core.batchjob:EXIT_CODE",
    "STOP_REASON": "_core.batchjob:STOP_REASON",
    "PID_FILE": "_core.batchjob:PID_FILE",
    "EMULATOR": "_core.remotefiles:EMULATOR",
    "start_command": "_core.remotefiles:start_command",
    # -- runtimes --------------------------------------------------------------------------
    "Runtime": "_core.runtime:Runtime",
    "LaunchCommand": "_core.runtime:LaunchCommand",
    # -- batching --------------------------------------------------------------------------
    "BatchingStrategy": "_core.strategy:BatchingStrategy",
    "Batch": "_core.strategy:Batch",
    "Item": "_core.strategy:Item",
    "CostModel": "_core.costmodel:CostModel",
    "valid_batch": "_core.planning:valid",
    # -- settings --------------------------------------------------------------------------
    "Settings": "_core.config:Settings",
    "Field": "_core.schema:Field",
    "between": "_core.schema:between",
    "positive": "_core.schema:positive",
    "non_negative": "_core.schema:non_negative",
    "settings": "_core.context:settings",
    "home": "_core.context:home",
    "use_config": "_core.context:set_config_option",
    # -- the ledger and the engine ---------------------------------------------------------
    "Ledger": "_core.ledger:Ledger",
    "Tx": "_core.ledger:Tx",
    "RUN_STATUSES": "_core.ledger:RUN_STATUSES",
    "LedgerTable": "_core.tables:LedgerTable",
    "PluginTable": "_core.tables:PluginTable",
    "ledger": "_core.context:ledger",
    "Engine": "_core.engine:Engine",
    "engine": "_core.context:engine",
    "Submission": "_core.engine:Submission",
    "show_submission": "_cli.submission:show_submission",
    "show_runs": "_cli.submission:show_runs",
    "Worker": "_core.worker:Worker",
    "run_folder": "_core.queries:run_folder",
    "new_id": "_core.ids:new_id",
    "process_owner": "_core.owner:me",
    "owner_alive": "_core.owner:alive",
    "owner_is_me": "_core.owner:is_me",
    # -- prompts and videos ----------------------------------------------------------------
    "new_prompt": "_core.prompts:new_prompt",
    "name_from_text": "_core.prompts:name_from_text",
    "RGB_NAMES": "_core.prompts:RGB_NAMES",
    "CONTROL_NAMES": "_core.prompts:CONTROL_NAMES",
    "VideoInfo": "_core.media:VideoInfo",
    "probe": "_core.media:probe",
    "sha256_file": "_core.media:sha256_file",
    "ffmpeg_exe": "_core.media:ffmpeg_exe",
    "make_test_video": "_core.media:make_test_video",
    # -- time ------------------------------------------------------------------------------
    "now": "_core.timeutil:now",
    "parse_time": "_core.timeutil:parse",
    "seconds_between": "_core.timeutil:seconds_between",
    # -- output and progress ---------------------------------------------------------------
    "JSON_OPTION": "_cli.common:JSON_OPTION",
    "confirm": "_cli.common:confirm",
    "console": "_cli.output:console",
    "err_console": "_cli.output:err_console",
    "emit_json": "_cli.output:emit_json",
    "table": "_cli.output:table",
    "say": "_cli.output:say",
    "warn": "_cli.output:warn",
    "escape": "_cli.output:escape",
    "human_size": "_cli.output:human_size",
    "short_time": "_cli.output:short_time",
    "BatchDisplay": "_core.display:BatchDisplay",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    target = _NAMES.get(name)
    if target is None:
        raise AttributeError(f"module 'cosmoskit.api' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module if module.startswith("cosmoskit.") else f"cosmoskit.{module}"), attr)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # what type checkers and editors see; at run time the names arrive on first use
    from cosmoskit._cli.common import JSON_OPTION, confirm
    from cosmoskit._cli.output import (console, emit_json, err_console, escape, human_size, say, short_time, table,
                                       warn)
    from cosmoskit._core.batchjob import EXIT_CODE, LOG, PID_FILE, STOP_REASON, BatchJob
    from cosmoskit._core.config import Settings
    from cosmoskit._core.context import engine, home, ledger, settings
    from cosmoskit._core.context import set_config_option as use_config
    from cosmoskit._core.costmodel import CostModel
    from cosmoskit._core.display import BatchDisplay
    from cosmoskit._cli.submission import show_runs, show_submission
    from cosmoskit._core.engine import Engine, Submission
    from cosmoskit._core.errors import CosmoskitError
    from cosmoskit._core.executor import Executor, PollResult, Progress, model_options
    from cosmoskit._core.hoststatus import GPU, NVIDIA_QUERY, ExecutorStatus, HostJob, parse_nvidia_smi
    from cosmoskit._core.ids import new_id
    from cosmoskit._core.ledger import RUN_STATUSES, Ledger, Tx
    from cosmoskit._core.media import VideoInfo, ffmpeg_exe, make_test_video, probe, sha256_file
    from cosmoskit._core.operation import Operation, Outcome
    from cosmoskit._core.owner import alive as owner_alive
    from cosmoskit._core.owner import is_me as owner_is_me
    from cosmoskit._core.owner import me as process_owner
    from cosmoskit._core.planning import valid as valid_batch
    from cosmoskit._core.plugins import executor_type_names, operation_names, runtime_names, strategy_names
    from cosmoskit._core.plugins import get_operation as operation_class
    from cosmoskit._core.plugins import get_strategy as strategy_class
    from cosmoskit._core.prompts import CONTROL_NAMES, RGB_NAMES, name_from_text, new_prompt
    from cosmoskit._core.queries import run_folder
    from cosmoskit._core.remotefiles import EMULATOR, start_command
    from cosmoskit._core.runtime import LaunchCommand, Runtime
    from cosmoskit._core.schema import Field, between, non_negative, positive
    from cosmoskit._core.sections import Section
    from cosmoskit._core.strategy import Batch, BatchingStrategy, Item
    from cosmoskit._core.tables import LedgerTable, PluginTable
    from cosmoskit._core.timeutil import now, seconds_between
    from cosmoskit._core.timeutil import parse as parse_time
    from cosmoskit.hookspecs import hookimpl
