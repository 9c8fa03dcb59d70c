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
    "Requirement": "_core.operation:Requirement",
    "BatchJob": "_core.batchjob:BatchJob",
    # -- executors -------------------------------------------------------------------------
    "Executor": "_core.executor:Executor",
    "PollResult": "_core.executor:PollResult",
    "Progress": "_core.executor:Progress",
    "model_options": "_core.executor:model_options",
    "gpus_problem": "_core.slots:gpus_problem",
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
    "env_names": "_core.config:env_names",
    "settings": "_core.context:settings",
    "home": "_core.context:home",
    "use_config": "_core.context:set_config_option",
    # -- the ledger and the engine ---------------------------------------------------------
    "Ledger": "_core.ledger:Ledger",
    "Tx": "_core.ledger:Tx",
    "RUN_STATUSES": "_core.ledger:RUN_STATUSES",
    "RunRecord": "_core.records:RunRecord",
    "PromptRecord": "_core.records:PromptRecord",
    "BatchRecord": "_core.records:BatchRecord",
    "VideoRecord": "_core.records:VideoRecord",
    "RunStatus": "_core.records:RunStatus",
    "Reason": "_core.records:Reason",
    "LedgerTable": "_core.tables:LedgerTable",
    "PluginTable": "_core.tables:PluginTable",
    "ledger": "_core.context:ledger",
    "Engine": "_core.engine:Engine",
    "engine": "_core.context:engine",
    "Submission": "_core.engine:Submission",
    "QueuePlan": "_core.queueops:QueuePlan",
    "PlannedRun": "_core.queueops:PlannedRun",
    "DeletionPreview": "_core.queueops:DeletionPreview",
    "show_submission": "_cli.submission:show_submission",
    "show_runs": "_cli.submission:show_runs",
    "not_completed": "_cli.submission:not_completed",
    "Worker": "_core.worker:Worker",
    "run_folder": "_core.queries:run_folder",
    "new_id": "_core.ids:new_id",
    "sweep_values": "_core.sweep:parse_values",
    "sweep_variations": "_core.sweep:variations",
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
    "check_video": "_core.media:check_video",
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
    from cosmoskit._cli.common import JSON_OPTION as JSON_OPTION
    from cosmoskit._cli.common import confirm as confirm
    from cosmoskit._cli.output import console as console
    from cosmoskit._cli.output import emit_json as emit_json
    from cosmoskit._cli.output import err_console as err_console
    from cosmoskit._cli.output import escape as escape
    from cosmoskit._cli.output import human_size as human_size
    from cosmoskit._cli.output import say as say
    from cosmoskit._cli.output import short_time as short_time
    from cosmoskit._cli.output import table as table
    from cosmoskit._cli.output import warn as warn
    from cosmoskit._cli.submission import not_completed as not_completed
    from cosmoskit._cli.submission import show_runs as show_runs
    from cosmoskit._cli.submission import show_submission as show_submission
    from cosmoskit._core.batchjob import EXIT_CODE as EXIT_CODE
    from cosmoskit._core.batchjob import LOG as LOG
    from cosmoskit._core.batchjob import PID_FILE as PID_FILE
    from cosmoskit._core.batchjob import STOP_REASON as STOP_REASON
    from cosmoskit._core.batchjob import BatchJob as BatchJob
    from cosmoskit._core.config import Settings as Settings
    from cosmoskit._core.config import env_names as env_names
    from cosmoskit._core.context import engine as engine
    from cosmoskit._core.context import home as home
    from cosmoskit._core.context import ledger as ledger
    from cosmoskit._core.context import set_config_option as use_config
    from cosmoskit._core.context import settings as settings
    from cosmoskit._core.costmodel import CostModel as CostModel
    from cosmoskit._core.display import BatchDisplay as BatchDisplay
    from cosmoskit._core.engine import Engine as Engine
    from cosmoskit._core.engine import Submission as Submission
    from cosmoskit._core.errors import CosmoskitError as CosmoskitError
    from cosmoskit._core.executor import Executor as Executor
    from cosmoskit._core.executor import PollResult as PollResult
    from cosmoskit._core.executor import Progress as Progress
    from cosmoskit._core.executor import model_options as model_options
    from cosmoskit._core.hoststatus import GPU as GPU
    from cosmoskit._core.hoststatus import NVIDIA_QUERY as NVIDIA_QUERY
    from cosmoskit._core.hoststatus import ExecutorStatus as ExecutorStatus
    from cosmoskit._core.hoststatus import HostJob as HostJob
    from cosmoskit._core.hoststatus import parse_nvidia_smi as parse_nvidia_smi
    from cosmoskit._core.ids import new_id as new_id
    from cosmoskit._core.ledger import RUN_STATUSES as RUN_STATUSES
    from cosmoskit._core.ledger import Ledger as Ledger
    from cosmoskit._core.ledger import Tx as Tx
    from cosmoskit._core.media import VideoInfo as VideoInfo
    from cosmoskit._core.media import check_video as check_video
    from cosmoskit._core.media import ffmpeg_exe as ffmpeg_exe
    from cosmoskit._core.media import make_test_video as make_test_video
    from cosmoskit._core.media import probe as probe
    from cosmoskit._core.media import sha256_file as sha256_file
    from cosmoskit._core.operation import Operation as Operation
    from cosmoskit._core.operation import Outcome as Outcome
    from cosmoskit._core.operation import Requirement as Requirement
    from cosmoskit._core.owner import alive as owner_alive
    from cosmoskit._core.owner import is_me as owner_is_me
    from cosmoskit._core.owner import me as process_owner
    from cosmoskit._core.planning import valid as valid_batch
    from cosmoskit._core.plugins import executor_type_names as executor_type_names
    from cosmoskit._core.plugins import get_operation as operation_class
    from cosmoskit._core.plugins import get_strategy as strategy_class
    from cosmoskit._core.plugins import operation_names as operation_names
    from cosmoskit._core.plugins import runtime_names as runtime_names
    from cosmoskit._core.plugins import strategy_names as strategy_names
    from cosmoskit._core.prompts import CONTROL_NAMES as CONTROL_NAMES
    from cosmoskit._core.prompts import RGB_NAMES as RGB_NAMES
    from cosmoskit._core.prompts import name_from_text as name_from_text
    from cosmoskit._core.prompts import new_prompt as new_prompt
    from cosmoskit._core.queries import run_folder as run_folder
    from cosmoskit._core.queueops import DeletionPreview as DeletionPreview
    from cosmoskit._core.queueops import PlannedRun as PlannedRun
    from cosmoskit._core.queueops import QueuePlan as QueuePlan
    from cosmoskit._core.records import BatchRecord as BatchRecord
    from cosmoskit._core.records import PromptRecord as PromptRecord
    from cosmoskit._core.records import Reason as Reason
    from cosmoskit._core.records import RunRecord as RunRecord
    from cosmoskit._core.records import RunStatus as RunStatus
    from cosmoskit._core.records import VideoRecord as VideoRecord
    from cosmoskit._core.remotefiles import EMULATOR as EMULATOR
    from cosmoskit._core.remotefiles import start_command as start_command
    from cosmoskit._core.runtime import LaunchCommand as LaunchCommand
    from cosmoskit._core.runtime import Runtime as Runtime
    from cosmoskit._core.schema import Field as Field
    from cosmoskit._core.schema import between as between
    from cosmoskit._core.schema import non_negative as non_negative
    from cosmoskit._core.schema import positive as positive
    from cosmoskit._core.sections import Section as Section
    from cosmoskit._core.slots import gpus_problem as gpus_problem
    from cosmoskit._core.strategy import Batch as Batch
    from cosmoskit._core.strategy import BatchingStrategy as BatchingStrategy
    from cosmoskit._core.strategy import Item as Item
    from cosmoskit._core.sweep import parse_values as sweep_values
    from cosmoskit._core.sweep import variations as sweep_variations
    from cosmoskit._core.tables import LedgerTable as LedgerTable
    from cosmoskit._core.tables import PluginTable as PluginTable
    from cosmoskit._core.timeutil import now as now
    from cosmoskit._core.timeutil import parse as parse_time
    from cosmoskit._core.timeutil import seconds_between as seconds_between
    from cosmoskit._core.worker import Worker as Worker
    from cosmoskit.hookspecs import hookimpl as hookimpl
