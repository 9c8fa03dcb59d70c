"""cosmoskit: drive NVIDIA Cosmos Transfer on GPU hosts."""

from __future__ import annotations

from cosmoskit._core.errors import CosmoskitError
from cosmoskit.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["CosmoskitError", "__version__", "hookimpl"]
