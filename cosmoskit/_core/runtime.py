"""The Runtime base class: how the launcher runs a model's command at a place (Docker, directly, the emulator …).

An operation gives the model's own argv (``torchrun … transfer.py …``); the runtime
chosen by ``model.runtime`` wraps it into the command the launcher executes, and
says where to run it, what to export and how to stop it.  ``launch.sh`` knows no
runtime: it runs ``command.args`` in ``RUN_DIR`` and, when stopped, ``stop.args``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from cosmoskit._core.batchjob import BatchJob
    from cosmoskit._core.config import Settings

# A name the shell can export: launch.env is sourced by bash, so nothing else may reach it.
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be an environment variable name, or None."""
    if not isinstance(name, str) or not ENV_NAME.match(name):
        return f"{name!r} is not an environment variable name (letters, digits and _, not starting with a digit)"
    return None


@dataclass
class LaunchCommand:
    """What the launcher runs: ``argv`` in ``cwd`` (None: the batch folder) with ``env`` exported;
    ``stop`` is run as well when the batch is stopped (``docker kill NAME``)."""

    argv: list[str]
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    stop: list[str] = field(default_factory=list)


class Runtime(ABC):
    """Base class of runtimes.  A minimal plugin (runs the model under ``nice``)::

        from cosmoskit import api

        class Nice(api.Runtime):
            name = "nice"
            description = "the host's own Python, at low CPU priority"

            def command(self, argv, job, place):
                return api.LaunchCommand(["nice", "-n", "10", *argv], cwd=job.model["cosmos_repo"])

        @api.hookimpl
        def register_runtimes(register):
            register(Nice)

    ``options`` is the schema of the runtime's own top-level section of
    ``cosmoskit.yaml`` (named ``name``); ``self.defaults`` holds it, validated.
    ``place`` is :meth:`Executor.host_facts` of the executor the batch runs on.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.defaults: dict[str, Any] = settings.section(self.name, self.options) if self.options else {}

    @abstractmethod
    def command(self, argv: list[str], job: BatchJob, place: dict[str, str]) -> LaunchCommand:
        """Wrap the model's ``argv`` into what the launcher runs for ``job`` at ``place``."""
