"""Bundled operation plugin: Cosmos 3 transfer (``cosmos3-nano``, ``cosmos3-super``; kind ``transfer``).

Both share the ``cosmos3:`` section of cosmoskit.yaml.  It imports cosmoskit only through
``cosmoskit.api`` and nothing of the other model plugins, so it can be left out
(``COSMOSKIT_LOAD_PLUGINS``) or deleted without breaking them.
"""
from __future__ import annotations

import cosmoskit


@cosmoskit.hookimpl
def register_operations(register):
    from cosmoskit_cosmos3.operation import Nano, Super

    register(Nano)
    register(Super)


@cosmoskit.hookimpl
def register_settings(register):
    from cosmoskit_cosmos3.params import SECTION

    register(SECTION)
