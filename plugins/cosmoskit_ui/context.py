"""What every request handler reaches: the project, the live services and the security guard."""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment

from cosmoskit import api
from cosmoskit.api import Engine, Ledger, Settings
from cosmoskit_ui.hosts import HostMonitor
from cosmoskit_ui.hub import Hub
from cosmoskit_ui.planner import Planner
from cosmoskit_ui.progress import ProgressBoard
from cosmoskit_ui.security import Guard
from cosmoskit_ui.snapshot import LedgerView
from cosmoskit_ui.thumbs import Thumbs


@dataclass
class UiContext:
    settings: Settings
    ledger: Ledger
    guard: Guard
    hub: Hub
    view: LedgerView
    hosts: HostMonitor
    board: ProgressBoard
    planner: Planner
    thumbs: Thumbs
    templates: Environment
    stop: threading.Event
    work: bool = False  # a worker runs in this process
    worker_log: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    background: list[threading.Thread] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return Path(self.settings.home)

    def engine(self) -> Engine:
        """A new engine over this server's project; close it when done."""
        return api.Engine(self.settings, self.ledger)

    def note(self, text: str) -> None:
        """A line for the Running page's worker panel."""
        self.worker_log.append(f"{api.now()[11:19]} {text}")
        self.hub.publish("progress")

    def in_background(self, name: str, target: Any) -> None:
        """Long work a click started (launching and following a batch): never on the request path."""
        def guarded() -> None:
            try:
                target()
            except api.CosmoskitError as exc:
                self.note(f"{name}: {exc}")
            except Exception as exc:
                self.note(f"{name}: internal error {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=guarded, name=f"ui-{name}", daemon=True)
        self.background.append(thread)
        thread.start()
