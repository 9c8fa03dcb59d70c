"""The Executor base class: a kind of place where batches run (this machine, an SSH host, a Slurm cluster …)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from cosmoskit._core.schema import Located, apply

if TYPE_CHECKING:
    from cosmoskit._core.batchjob import BatchJob
    from cosmoskit._core.config import Settings


@dataclass
class PollResult:
    """``running``, ``exited`` (with ``exit_code``) or ``vanished`` (the process is gone and left no exit code)."""

    state: str
    exit_code: int | None = None
    detail: str = ""
    info: dict[str, Any] = field(default_factory=dict)


# Keys an executor entry may override from the ``model:`` section, e.g. a host's own checkpoint folder.
MODEL_KEYS = ("runtime", "cosmos_repo", "checkpoint_dir", "docker_image", "docker_command", "torchrun", "env")


def model_options() -> dict[str, Any]:
    """Schema of those overrides, for executor plugins to include in their ``options``."""
    from cosmoskit._core.config import CORE_SCHEMA
    from cosmoskit._core.schema import Field

    out: dict[str, Any] = {}
    for key in MODEL_KEYS:
        base = CORE_SCHEMA["model"][key]
        out[key] = Field(base.type, None, base.doc + " (this executor; else model:)", choices=base.choices, nullable=True)
    return out


Progress = Callable[[str, float, float], None]  # (label, done, total)


class Executor:
    """Base class of executors.  A minimal plugin (runs the launcher on this machine, like ``local``)::

        import os, subprocess, cosmoskit
        from cosmoskit._core.executor import Executor, PollResult

        class Here(Executor):
            name = "here"
            description = "run in a folder on this machine"

            def remote_dir(self, job):
                return str(job.dir)          # stage in place

            def stage(self, job, progress=None):
                for item in job.inputs.values():   # inputs the operation asked for
                    os.link(item["path"], job.local(item["name"]))

            def launch(self, job):
                proc = subprocess.Popen(["bash", str(job.dir / "launch.sh"), str(job.dir)], start_new_session=True)
                return {"pid": proc.pid}

            def poll(self, handle):
                code = Path(handle["batch_dir"], "exit_code")
                return PollResult("exited", int(code.read_text())) if code.exists() else PollResult("running")

            ...  # read_log, fetch, cancel: see LocalExecutor

        @cosmoskit.hookimpl
        def register_executors(register):
            register(Here)

    An instance serves one ``executors:`` entry of ``cosmoskit.yaml``; its
    ``label`` is that entry's name and ``config`` its validated keys
    (``options`` is their schema; ``type`` selects the class by ``name``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, label: str, config: dict[str, Any], settings: "Settings") -> None:
        self.label = label
        self.config = config
        self.settings = settings

    @classmethod
    def validate_config(cls, label: str, raw: dict[str, Any], settings: "Settings") -> dict[str, Any]:
        from cosmoskit._core.schema import Field

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

    # -- where -----------------------------------------------------------------
    def remote_dir(self, job: "BatchJob") -> str:
        """Absolute path of the batch folder where the model will see it."""
        raise NotImplementedError

    def runtime_env(self) -> dict[str, str]:
        """Values for the launcher's ``launch.env`` (runtime, image, mounts …) on this executor."""
        return {}

    # -- lifecycle -------------------------------------------------------------
    def stage(self, job: "BatchJob", progress: Progress | None = None) -> dict[str, Any]:
        """Put the batch folder and its inputs where the model runs.  Returns figures (bytes sent …)."""
        raise NotImplementedError

    def launch(self, job: "BatchJob") -> dict[str, Any]:
        """Start ``launch.sh`` detached; return what the handle needs beyond host, folder and container (pid, job id)."""
        raise NotImplementedError

    def poll(self, handle: dict[str, Any]) -> PollResult:
        raise NotImplementedError

    def read_log(self, handle: dict[str, Any], offset: int) -> tuple[bytes, int]:
        """Bytes of the batch log from ``offset``; returns (data, new offset)."""
        raise NotImplementedError

    def fetch(self, handle: dict[str, Any], job: "BatchJob", progress: Progress | None = None) -> None:
        """Bring the batch folder's outputs, log and exit code back into ``job.dir``."""
        raise NotImplementedError

    def cancel(self, handle: dict[str, Any]) -> None:
        """Stop the batch (container and launcher).  Must not fail if it already ended."""
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        """Reachability, GPUs, running containers and disk for ``cosmoskit status``."""
        return {"reachable": True}

    def close(self) -> None:
        pass
