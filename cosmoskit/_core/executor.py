"""The Executor base class: a kind of place where batches run (this machine, an SSH host, a Slurm cluster …)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypedDict

from cosmoskit._core.schema import Field, Located, apply

if TYPE_CHECKING:
    from cosmoskit._core.batchjob import BatchJob
    from cosmoskit._core.config import Settings
    from cosmoskit._core.hoststatus import ExecutorStatus

PollState = Literal["running", "exited", "vanished"]


@dataclass
class PollResult:
    """``running``, ``exited`` (with ``exit_code``) or ``vanished`` (the process is gone and left no exit code)."""

    state: PollState
    exit_code: int | None = None
    detail: str = ""
    info: dict[str, Any] = field(default_factory=dict)


class BatchHandle(TypedDict, total=False):
    """What the ledger keeps of a launched batch: enough for any later process to find it again.

    The engine fills ``executor``, ``type``, ``batch_dir`` and ``container`` (plus what
    ``handle_base`` returns) before staging; ``launch`` adds its own fields (``pid``,
    ``job_id`` …).  ``reason`` is set only on the copy passed to ``cancel``.
    """

    executor: str
    type: str
    batch_dir: str
    container: str
    host: str
    port: int
    cluster: str
    pid: int
    job_id: str
    reason: str


# Keys an executor entry may override from the ``model:`` section, e.g. a host's own checkpoint folder.
MODEL_KEYS = ("runtime", "cosmos_repo", "checkpoint_dir", "docker_image", "docker_command", "torchrun", "env")


def model_options() -> dict[str, Any]:
    """Schema of those overrides, for executor plugins to include in their ``options``."""
    from cosmoskit._core.config import CORE_SCHEMA

    out: dict[str, Any] = {}
    for key in MODEL_KEYS:
        base = CORE_SCHEMA["model"][key]
        out[key] = Field(
            base.type,
            None,
            base.doc + " (this executor; else model:)",
            choices=base.choices,
            nullable=True,
            check=base.check,
        )
    out["models"] = Field(
        dict,
        {},
        "per-model overrides at this place, e.g. {transfer2.5: {cosmos_repo: /data/t25}}",
        check=_model_overrides,
    )
    return out


def _model_overrides(value: dict[str, Any]) -> str | None:
    for model, keys in value.items():
        if not isinstance(keys, dict):
            return f"entry {model!r} must be a mapping of settings"
    return None


Progress = Callable[[str, float, float], None]  # (label, done, total)


class Executor(ABC):
    """Base class of executors: every method the core calls is declared here.

    A subclass that leaves an abstract method out is refused when its plugin
    registers it, with the missing methods named.  A minimal plugin (runs the
    launcher on this machine, like ``local``)::

        import os, signal, subprocess
        from pathlib import Path
        from cosmoskit import api

        class Here(api.Executor):
            name = "here"
            description = "run in a folder on this machine"

            def remote_dir(self, job):
                return str(job.dir)          # the batch folder is where the model runs

            def stage(self, job, progress=None):
                for item in job.inputs.values():   # inputs the operation asked for
                    os.link(item["path"], job.local(item["name"]))
                return {}

            def launch(self, job):
                out = subprocess.run(["bash", "-c", api.start_command(str(job.dir))], capture_output=True, text=True)
                return {"pid": int(out.stdout)}

            def poll(self, handle):
                code = Path(handle["batch_dir"], api.EXIT_CODE)
                return api.PollResult("exited", int(code.read_text())) if code.exists() else api.PollResult("running")

            ...  # read_log, fetch, cancel, kill_all, status: see cosmoskit_local

        @api.hookimpl
        def register_executors(register):
            register(Here)

    An instance serves one ``executors:`` entry of ``cosmoskit.yaml``; its
    ``label`` is that entry's name and ``config`` its validated keys
    (``options`` is their schema; ``type`` selects the class by ``name``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, label: str, config: dict[str, Any], settings: Settings) -> None:
        self.label = label
        self.config = config
        self.settings = settings

    @classmethod
    def validate_config(cls, label: str, raw: dict[str, Any], settings: Settings) -> dict[str, Any]:
        schema = {"type": Field(str, cls.name, "executor type", required=True), **cls.options}
        located = settings.located if settings.config_path else Located(None)
        return apply(schema, raw, located, f"executors.{label}.", None)

    def model_settings(self) -> dict[str, Any]:
        """The ``model:`` section with this executor's own overrides (runtime, repo, checkpoints …)."""
        merged = dict(self.settings["model"])
        for key in MODEL_KEYS:
            if self.config.get(key) is not None:
                merged[key] = self.config[key]
        merged.setdefault("num_gpus", 1)
        return merged

    def handle_base(self) -> dict[str, Any]:
        """What identifies the place in a batch handle (host, cluster …)."""
        return {}

    def concurrency(self) -> int:
        """How many batches run at once at a place whose GPUs are not pinned (``gpu_devices`` is None):
        a Slurm cluster, which does its own placement, queues several."""
        return 1

    def gpu_devices(self) -> list[str] | None:
        """The GPU indices at this place that batches are pinned to, one batch per ``num_gpus`` of them
        (cosmoskit/_core/slots.py); None when the place does its own placement (Slurm) or its GPUs are
        unknown: then ``concurrency()`` batches run at once, unpinned.

        The default reads the entry's ``gpus:`` (a count, or indices) and, for ``all``, asks
        ``nvidia-smi`` at the place through ``shell``; asked once per engine."""
        from cosmoskit._core.slots import parse_gpus

        value = self.config.get("gpus")
        devices = parse_gpus(value)
        if devices is not None or value is None or type(self).shell is Executor.shell:
            return devices
        # an unreachable place raises: asked again at the next launch, not remembered as "no GPUs"
        code, out = self.shell("nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null")
        found = [line.strip() for line in out.splitlines() if line.strip().isdigit()]
        return found if code == 0 and found else None

    # -- where -----------------------------------------------------------------
    @abstractmethod
    def remote_dir(self, job: BatchJob) -> str:
        """Absolute path of the batch folder where the model will see it."""

    def host_facts(self) -> dict[str, str]:
        """Facts about this place a runtime needs: ``python`` (runs cosmoskit's tools there), ``gpus``
        (the ``docker --gpus`` value) …"""
        return {}

    def expand_home(self, path: str) -> str:
        """``~/x`` as the place spells it (its user's home).  The default serves executors whose place is
        this machine; a remote place answers with its own home."""
        import os

        return os.path.expanduser(path)

    def tool_path(self, local: Path) -> str:
        """Where a file cosmoskit ships to the place (the emulator …) will be; ``stage`` puts it there.

        The default serves executors whose place is this machine: the file stays where it is."""
        return str(local)

    # -- lifecycle -------------------------------------------------------------
    @abstractmethod
    def stage(self, job: BatchJob, progress: Progress | None = None) -> dict[str, Any]:
        """Put the batch folder, its inputs and ``job.tools`` where the model runs.  Returns figures (bytes sent …)."""

    @abstractmethod
    def launch(self, job: BatchJob) -> dict[str, Any]:
        """Start ``launch.sh`` detached; return what the handle needs beyond host, folder and container
        (pid, job id)."""

    @abstractmethod
    def poll(self, handle: dict[str, Any]) -> PollResult:
        """Is the batch running, exited (with its code) or vanished?

        Raise ``CosmoskitError`` when the place cannot be reached."""

    def wait(self, handle: dict[str, Any], timeout: float) -> PollResult:
        """Return as soon as the batch is no longer running, or after about ``timeout`` seconds with its
        state: how a follower notices an exit at once (and starts the batch staged behind it).

        The default sleeps ``timeout`` and polls once (a poll may be dear: Slurm's asks the controller), and
        the follower's timeouts grow from 0.2 s to ``timeouts.poll_seconds``; ``local`` waits on the launcher
        process itself and ``ssh`` waits on the host, so neither adds a polling delay.  Raise
        ``CosmoskitError`` when the place cannot be reached."""
        import time

        time.sleep(timeout)
        return self.poll(handle)

    @abstractmethod
    def read_log(self, handle: dict[str, Any], offset: int) -> tuple[bytes, int]:
        """Bytes of the batch log from ``offset``; returns (data, new offset)."""

    @abstractmethod
    def fetch(self, handle: dict[str, Any], job: BatchJob, progress: Progress | None = None) -> None:
        """Bring the batch folder's outputs, log and exit code back into ``job.dir``."""

    @abstractmethod
    def cancel(self, handle: dict[str, Any]) -> None:
        """Stop the batch (its launcher stops the model).  Must not fail if it already ended."""

    @abstractmethod
    def kill_all(self) -> list[str]:
        """Stop everything cosmoskit runs at this place, known to the ledger or not (``cosmoskit kill --host``).

        Returns what was stopped, one name each."""

    @abstractmethod
    def status(self) -> ExecutorStatus:
        """Reachability, GPUs, what runs there and free disk, for ``cosmoskit status``; never raises for an
        unreachable place (say so in the record instead)."""

    def shell(self, script: str) -> tuple[int, str]:
        """Run a short ``bash`` script at the place (the checks before a launch); (exit code, output).

        An executor that can run no command there leaves it out: its places are not checked."""
        from cosmoskit._core.errors import CosmoskitError

        raise CosmoskitError(f"executor {self.label!r} ({self.name}) cannot run checks at its place")

    def close(self) -> None:  # noqa: B027 - optional: most executors hold nothing to release
        """Release connections; called once the engine is done with the executor."""
