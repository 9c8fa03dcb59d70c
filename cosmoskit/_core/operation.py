"""The Operation base class: one kind of GPU job (``transfer``, ``upscale``, ``enhance`` …)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from cosmoskit._core.records import PromptRecord, Reason, RunRecord

if TYPE_CHECKING:
    from cosmoskit._core.batchjob import BatchJob
    from cosmoskit._core.config import Settings
    from cosmoskit._core.costmodel import CostModel
    from cosmoskit._core.ledger import Tx


@dataclass
class Outcome:
    """What one run of a finished batch produced.

    ``files`` maps a name inside the run folder (``output.mp4`` …) to a file in
    the local batch folder; ``error`` says why a run without output failed;
    ``retry`` marks a run that never got its turn (the process died first) and
    may be relaunched.
    """

    run_id: str
    ok: bool
    files: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    reason: Reason | None = None
    retry: bool = False
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Requirement:
    """One thing a place must have for an operation to run there, and the shell test that says so.

    ``test`` runs in ``bash`` at the place (on a Slurm cluster: on the login node, whose shared
    filesystem the jobs see); exit 0 means present.  ``what`` and ``fix`` are for people."""

    what: str
    test: str
    fix: str = ""


class Operation(ABC):
    """Base class of operations.  A minimal plugin::

        from cosmoskit import api

        class Echo(api.Operation):
            name = "echo"
            description = "copy the prompt's video (a test operation)"
            batchable = False

            def validate(self, params, prompt):
                return {}

            def prepare(self, job):
                video = job.stage_input(job.prompts[job.runs[0]["prompt_id"]]["inputs"]["rgb"])
                return ["cp", video, job.remote("outputs/output.mp4")]

            def collect(self, job, exit_code, log):
                run = job.runs[0]
                out = job.local("outputs/output.mp4")
                return [api.Outcome(run["id"], out.exists(), {"output.mp4": str(out)} if out.exists() else {},
                                    None if out.exists() else "no output")]

        @api.hookimpl
        def register_operations(register):
            register(Echo)

    ``options`` is the schema of the operation's section in ``cosmoskit.yaml``
    (named ``config_section``, else ``name``); ``self.defaults`` holds it, validated.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    batchable: ClassVar[bool] = True
    options: ClassVar[dict[str, Any]] = {}
    config_section: ClassVar[str | None] = None
    needs_prompt: ClassVar[bool] = True
    # The parameters a run takes (``cosmoskit run create OP … --param KEY=VALUE``): None means ``options``.
    parameters: ClassVar[dict[str, Any] | None] = None
    # The runtime its command always runs under (None: the configured model.runtime).
    runtime: ClassVar[str | None] = None
    # What a person asks for (``transfer``) and which model does it (``transfer1``, ``transfer2.5`` …):
    # `cosmoskit transfer --model M` runs the operation of kind ``transfer`` whose model is M.  An
    # empty kind is the operation's own name; an operation without a model is the only one of its kind.
    kind: ClassVar[str] = ""
    model: ClassVar[str | None] = None

    @classmethod
    def parameter_schema(cls) -> dict[str, Any]:
        return cls.options if cls.parameters is None else cls.parameters

    @classmethod
    def kind_name(cls) -> str:
        return cls.kind or cls.name

    def model_settings(self, base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
        """What the runtime needs at the place the batch runs (``job.model``): the repository, image,
        checkpoints, environment …  ``base`` is the ``model:`` section with the executor's overrides;
        ``overrides`` the executor's ``models: {<this model>: {...}}`` entry.  The default keeps ``base``."""
        return {**base, **overrides}

    def requirements(self, model: dict[str, Any], runtime: str) -> list[Requirement]:
        """What a place must have before a batch of this operation may start there (checked by
        `cosmoskit host check` and before every launch; the default: nothing)."""
        return []

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.defaults: dict[str, Any] = (
            settings.section(self.config_section or self.name, self.options) if self.options else {}
        )

    # -- planning -------------------------------------------------------
    @abstractmethod
    def validate(self, params: dict[str, Any], prompt: PromptRecord | None) -> dict[str, Any]:
        """Return complete, normalised parameters for a new run, or raise CosmoskitError."""

    @classmethod
    def summary(cls, run: RunRecord) -> str:
        """A short line of the run's parameters for tables (default: nothing)."""
        return ""

    def controls(self, run: RunRecord) -> tuple[str, ...]:
        """Control networks the run loads (they drive model-load cost and memory)."""
        return ()

    def batch_key(self, run: RunRecord, prompt: PromptRecord | None) -> tuple[Any, ...]:
        """Runs may share one model load only if their keys are equal."""
        return (self.name, run["id"]) if not self.batchable else (self.name,)

    def frames(self, run: RunRecord, prompt: PromptRecord | None) -> int:
        return int((prompt or {}).get("frames") or 121)  # type: ignore[call-overload]

    def chunks(self, run: RunRecord, prompt: PromptRecord | None) -> int:
        """Generation units of the cost model: 121-frame chunks, each next one adding 120 frames."""
        frames = max(1, self.frames(run, prompt))
        return max(1, -(-(frames - 1) // 120))

    def steps(self, run: RunRecord) -> int:
        return int(run.get("params", {}).get("num_steps", 35))

    def gpus(self, runs: list[RunRecord]) -> int:
        """GPUs one batch of these runs takes at its place (its slot, cosmoskit/_core/slots.py): the runs'
        ``num_gpus`` parameter (context parallelism), 1 without it."""
        return max([int(r.get("params", {}).get("num_gpus") or 1) for r in runs] or [1])

    def work(self, run: RunRecord, prompt: PromptRecord | None) -> float:
        """The run's generation relative to a plain one, whatever batch it is in (its own controls when a
        model computes only those, a third forward per step …): its time is chunks x steps x work."""
        return 1.0

    def cost_settings(self) -> str | None:
        """Where in cosmoskit.yaml the parameters of this operation's cost model live (``batching.cost`` for
        Transfer 1's): ``cosmoskit calibrate`` fits those of them it finds there from this operation's
        finished batches, and ``--apply`` writes the fit there.  None: not calibrated."""
        return None

    def cost_model(self, base: CostModel) -> CostModel:
        """The cost model of this operation's runs (docs/cost-model.md).  ``base`` is the configured one
        (``batching.cost``: Transfer 1's numbers, with the GPU's memory and ``max_runs_per_batch``); a model
        with its own load, chunk and memory figures returns its own (``dataclasses.replace(base, …)``).
        It must keep every cost non-decreasing in the number of controls (`optimal` relies on it)."""
        return base

    # -- running ----------------------------------------------------------
    @abstractmethod
    def prepare(self, job: BatchJob) -> list[str]:
        """Write the model's input files into ``job.dir`` and return the argv to run there."""

    @abstractmethod
    def collect(self, job: BatchJob, exit_code: int | None, log: str) -> list[Outcome]:
        """Map what the batch produced back to its runs, one Outcome each, in line order."""

    def run_log(self, job: BatchJob, index: int, log: str) -> str:
        """The part of the batch log about the run on line ``index`` (default: all of it)."""
        return log

    def progress(self, line: str) -> dict[str, Any] | None:
        """Parse one log line into a progress event: ``{"phase": "loaded"}``,
        ``{"line": k, "chunk": c, "chunks": n}`` …"""
        return None

    def completed(self, tx: Tx, run: RunRecord, outcome: Outcome) -> dict[str, Any]:
        """Ledger changes beyond the run itself once a run completes (``enhance`` makes a prompt).

        Returns changes to the run record."""
        return {}
