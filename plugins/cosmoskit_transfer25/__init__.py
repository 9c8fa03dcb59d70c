"""Bundled operation plugin: Cosmos Transfer 2.5 (``transfer2.5``, kind ``transfer``).

It imports cosmoskit only through ``cosmoskit.api`` and nothing of the other model plugins, so it
can be left out (``COSMOSKIT_LOAD_PLUGINS``) or deleted without breaking them.
"""
from __future__ import annotations

import cosmoskit


@cosmoskit.hookimpl
def register_operations(register):
    from cosmoskit_transfer25.operation import Transfer25

    register(Transfer25)
