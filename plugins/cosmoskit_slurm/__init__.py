"""Bundled executor plugin: batches as Slurm jobs, from a login node over SSH or on it."""
from __future__ import annotations

import cosmoskit


@cosmoskit.hookimpl
def register_executors(register):
    from cosmoskit_slurm.executor import SlurmExecutor

    register(SlurmExecutor)
