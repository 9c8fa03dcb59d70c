"""The bundled runtimes.  Each wraps the model's argv into what ``launch.sh`` runs.

The Docker line follows the model's documented one: the repository mounted at
``/workspace`` (and the working folder), ``--ipc=host`` for torchrun's shared memory,
and the batch folder mounted at its own path so the paths in the spec hold inside the
container.  What differs between models comes from ``job.model`` (the operation's
``model_settings``), so one runtime builds every model's line:

==================  ===========================================================  ======================
key                 what                                                         when absent
==================  ===========================================================  ======================
``docker_mounts``   ``-v`` values besides the batch folder (``host:container``,  Transfer 1's: the repo
                    or a lone container path for an anonymous volume)            at /workspace, the
                                                                                 checkpoints at their path
``docker_workdir``  ``-w``                                                       ``/workspace``
``docker_env``      fixed ``-e K=V`` (never a secret: it is on the command line) ``PYTHONPATH=/workspace``
``docker_args``     more ``docker run`` flags (``--runtime=nvidia`` …)           none
``env_file``        ``--env-file PATH`` at the place: secrets such as            none
                    ``HF_TOKEN=…`` reach the container without ever being on a
                    command line (docs/models/transfer2.5.md §2); the direct
                    runtime sources the same file
==================  ===========================================================  ======================

``model.env`` names are passed as ``-e NAME`` (the value comes from the launcher's
environment, not the command line).  Transfer 1 sets none of the keys, so its line is
the one of docs/models/transfer1.md, "Docker", exactly as before.
"""
from __future__ import annotations

import shlex
from typing import Any, ClassVar

from cosmoskit.api import EMULATOR, BatchJob, Field, LaunchCommand, Runtime, non_negative


class Docker(Runtime):
    name = "docker"
    description = "the model's image under Docker (model.docker_image, model.docker_command)"

    def command(self, argv: list[str], job: BatchJob, place: dict[str, str]) -> LaunchCommand:
        m = job.model
        docker = shlex.split(m["docker_command"])
        mounts = m.get("docker_mounts")
        if mounts is None:  # Transfer 1: the repository, and the checkpoints at their own path
            mounts = [f"{m['cosmos_repo']}:/workspace", f"{m['checkpoint_dir']}:{m['checkpoint_dir']}"]
        fixed = m.get("docker_env")
        if fixed is None:
            fixed = {"PYTHONPATH": "/workspace"}
        env_args = [a for name in (m.get("env") or {}) for a in ("-e", name)]
        env_file = ["--env-file", m["env_file"]] if m.get("env_file") else []
        line = [*docker, "run", "--rm", "--name", job.container, "--gpus", place.get("gpus") or "all", "--ipc=host",
                *(m.get("docker_args") or []),
                *(a for mount in mounts for a in ("-v", mount)),
                "-v", f"{job.remote_root}:{job.remote_root}",
                "-w", m.get("docker_workdir") or "/workspace",
                *(a for k, v in fixed.items() for a in ("-e", f"{k}={v}")),
                *env_args, *env_file, m["docker_image"], *argv]
        return LaunchCommand(line, stop=[*docker, "kill", job.container])


class Direct(Runtime):
    """The host's own environment in the model's repository: ``torchrun`` and ``python`` at the head of the
    model's argv become ``job.model["torchrun"]`` and ``job.model["python"]`` (a repository's ``.venv``),
    when the model settings name them.  ``job.model["env_file"]`` (``KEY=VALUE`` lines: the Hugging Face
    token) is exported from the file by a small bash wrapper, so no secret is ever on a command line."""

    name = "direct"
    description = "the host's own Python environment, in the Cosmos repository (model.cosmos_repo, model.torchrun)"

    def command(self, argv: list[str], job: BatchJob, place: dict[str, str]) -> LaunchCommand:
        repo = job.model["cosmos_repo"]
        if argv and argv[0] == "torchrun":
            argv = [job.model["torchrun"], *argv[1:]]
        elif argv and argv[0] == "python" and job.model.get("python"):
            argv = [job.model["python"], *argv[1:]]
        if job.model.get("env_file"):
            argv = ["bash", "-c", 'set -a && . "$0" && set +a && exec "$@"', job.model["env_file"], *argv]
        return LaunchCommand(argv, cwd=repo, env={"PYTHONPATH": repo})


class Plain(Runtime):
    """For operations that are not a model (a copy, a conversion): nothing wraps their command."""

    name = "plain"
    description = "the command as it is, in the batch folder"

    def command(self, argv: list[str], job: BatchJob, place: dict[str, str]) -> LaunchCommand:
        return LaunchCommand(list(argv))


class Emulator(Runtime):
    """The CPU emulator of the models (docs/emulator.md): never a model output, and labelled so."""

    name = "emulator"
    description = "the CPU emulator of the Cosmos models (no GPU, no weights; its videos are labelled)"
    options: ClassVar[dict[str, Any]] = {
        "load_seconds": Field(float, 0.0, "simulated base model load", check=non_negative),
        "load_seconds_per_control": Field(float, 0.0, "simulated load per control network", check=non_negative),
        "seconds_per_chunk": Field(float, 0.0, "simulated generation per chunk of the model at 35 steps",
                                   check=non_negative),
        "control_factor": Field(float, None,
                                "extra generation per added control network (null: proportional to the count)",
                                nullable=True, check=non_negative),
        "oom_above_controls": Field(int, None, "simulate CUDA out-of-memory above this many control networks",
                                    nullable=True),
        "block_word": Field(str, "EMULATOR_GUARDRAIL_BLOCK",
                            "prompts holding this word are blocked by the simulated guardrail"),
        "variation": Field(bool, True, "give each run its own look (off = reuse one encode, fastest)"),
    }

    def command(self, argv: list[str], job: BatchJob, place: dict[str, str]) -> LaunchCommand:
        return LaunchCommand([place.get("python") or "python3", job.ship_tool(EMULATOR), *argv], env=self.env())

    def env(self) -> dict[str, str]:
        e = self.defaults
        env = {
            "COSMOS_EMULATOR_LOAD_SECONDS": str(e["load_seconds"]),
            "COSMOS_EMULATOR_LOAD_SECONDS_PER_CONTROL": str(e["load_seconds_per_control"]),
            "COSMOS_EMULATOR_SECONDS_PER_CHUNK": str(e["seconds_per_chunk"]),
            "COSMOS_EMULATOR_BLOCK_WORD": e["block_word"],
            "COSMOS_EMULATOR_VARIATION": "1" if e["variation"] else "0",
        }
        if e["control_factor"] is not None:
            env["COSMOS_EMULATOR_CONTROL_FACTOR"] = str(e["control_factor"])
        if e["oom_above_controls"] is not None:
            env["COSMOS_EMULATOR_OOM_ABOVE_CONTROLS"] = str(e["oom_above_controls"])
        return env
