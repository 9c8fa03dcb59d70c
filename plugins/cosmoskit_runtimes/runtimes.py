"""The three bundled runtimes.  Each wraps the model's argv into what ``launch.sh`` runs.

The Docker line follows the model's documented one: the repository mounted at
``/workspace`` (and the working folder), ``--ipc=host`` for torchrun's shared memory,
and the checkpoint and batch folders mounted at their own paths so the paths in the
spec hold inside the container (docs/models/transfer1.md, "Docker").
"""
from __future__ import annotations

import shlex
from typing import Any

from cosmoskit.api import EMULATOR, BatchJob, Field, LaunchCommand, Runtime, non_negative


class Docker(Runtime):
    name = "docker"
    description = "the model's image under Docker (model.docker_image, model.docker_command)"

    def command(self, argv: list[str], job: BatchJob, place: dict[str, str]) -> LaunchCommand:
        m = job.model
        docker = shlex.split(m["docker_command"])
        env_args = [a for name in (m.get("env") or {}) for a in ("-e", name)]
        line = [*docker, "run", "--rm", "--name", job.container, "--gpus", place.get("gpus") or "all", "--ipc=host",
                "-v", f"{m['cosmos_repo']}:/workspace", "-v", f"{m['checkpoint_dir']}:{m['checkpoint_dir']}",
                "-v", f"{job.remote_root}:{job.remote_root}",
                "-w", "/workspace", "-e", "PYTHONPATH=/workspace", *env_args, m["docker_image"], *argv]
        return LaunchCommand(line, stop=[*docker, "kill", job.container])


class Direct(Runtime):
    name = "direct"
    description = "the host's own Python environment, in the Cosmos repository (model.cosmos_repo, model.torchrun)"

    def command(self, argv: list[str], job: BatchJob, place: dict[str, str]) -> LaunchCommand:
        repo = job.model["cosmos_repo"]
        if argv and argv[0] == "torchrun":
            argv = [job.model["torchrun"], *argv[1:]]
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
    options: dict[str, Any] = {
        "load_seconds": Field(float, 0.0, "simulated base model load", check=non_negative),
        "load_seconds_per_control": Field(float, 0.0, "simulated load per control network", check=non_negative),
        "seconds_per_chunk": Field(float, 0.0, "simulated generation per 121-frame chunk at 35 steps", check=non_negative),
        "control_factor": Field(float, None, "extra generation per added control network (null: proportional to the count)",
                                nullable=True, check=non_negative),
        "oom_above_controls": Field(int, None, "simulate CUDA out-of-memory above this many control networks",
                                    nullable=True),
        "block_word": Field(str, "EMULATOR_GUARDRAIL_BLOCK", "prompts holding this word are blocked by the simulated guardrail"),
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
