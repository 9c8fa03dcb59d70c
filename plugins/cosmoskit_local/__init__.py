"""Bundled executor plugin: run batches on this machine."""
from __future__ import annotations

import cosmoskit


@cosmoskit.hookimpl
def register_executors(register):
    from cosmoskit_local.executor import LocalExecutor

    register(LocalExecutor)
