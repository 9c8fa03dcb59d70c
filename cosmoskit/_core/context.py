"""Per-process access to the settings and the ledger, for commands (core and plugin) alike."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cosmoskit._core.config import Settings
    from cosmoskit._core.engine import Engine
    from cosmoskit._core.ledger import Ledger

_config_option: str | None = None
_settings: Settings | None = None
_ledger: Ledger | None = None


def set_config_option(path: str | None) -> None:
    """Record ``--config`` and forget anything loaded with another one."""
    global _config_option, _settings, _ledger
    _config_option, _settings, _ledger = path, None, None


def settings() -> Settings:
    global _settings
    if _settings is None:
        from cosmoskit._core import config

        loaded = config.load(_config_option)
        loaded.check_keys()
        if loaded.config_path is None and not os.environ.get("COSMOSKIT_HOME"):
            # no project here: say where the work goes, once per command, on stderr (stdout stays data)
            sys.stderr.write(
                f"note: no cosmoskit.yaml in this folder or above; using the per-user project in "
                f"{loaded.home} (`cosmoskit init` makes a project here)\n"
            )
        _settings = loaded
    return _settings


def home() -> Path:
    return settings().home


def ledger() -> Ledger:
    global _ledger
    if _ledger is None:
        from cosmoskit._core.ledger import Ledger

        _ledger = Ledger(home())
    return _ledger


def engine() -> Engine:
    """A new Engine over this process's settings and ledger; close it when done (it holds connections)."""
    from cosmoskit._core.engine import Engine

    return Engine(settings(), ledger())


def reset() -> None:
    set_config_option(None)
