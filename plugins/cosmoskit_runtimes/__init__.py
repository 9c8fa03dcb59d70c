"""Bundled runtime plugin: how the launcher runs a command: ``docker``, ``direct``, ``emulator`` or ``plain``."""
from __future__ import annotations

import cosmoskit


@cosmoskit.hookimpl
def register_runtimes(register):
    from cosmoskit_runtimes.runtimes import Direct, Docker, Emulator, Plain

    register(Docker)
    register(Direct)
    register(Emulator)
    register(Plain)
