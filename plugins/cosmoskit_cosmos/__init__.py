"""Bundled operation plugin: Cosmos Transfer 1 ``transfer``, ``upscale`` and ``enhance``, and their commands."""
from __future__ import annotations

import cosmoskit


@cosmoskit.hookimpl
def register_operations(register):
    from cosmoskit_cosmos.enhance import Enhance
    from cosmoskit_cosmos.transfer import Transfer
    from cosmoskit_cosmos.upscale import Upscale

    register(Transfer)
    register(Upscale)
    register(Enhance)


@cosmoskit.hookimpl
def register_commands(app):
    from cosmoskit_cosmos import commands

    commands.register(app)
