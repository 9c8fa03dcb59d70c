"""Bundled batching strategies: single, strict, mixed, optimal."""
from __future__ import annotations

import cosmoskit


@cosmoskit.hookimpl
def register_strategies(register):
    from cosmoskit_batching.strategies import Mixed, Optimal, Single, Strict

    for cls in (Single, Strict, Mixed, Optimal):
        register(cls)
