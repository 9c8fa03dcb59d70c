"""The queue's plan for every strategy, made again after each ledger change on a thread of its own.

``Engine.plan`` first settles batches whose process died, which may ask their host; the Queue page
therefore shows the latest finished plan (with the ledger version it was made at) and is told when
a newer one is ready.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from cosmoskit.api import Ledger, Settings
from cosmoskit_ui.engineops import QueueView, queue_views
from cosmoskit_ui.hub import Hub

IDLE_SECONDS = 5.0  # plan again now and then even without a change (estimates count from "now")


@dataclass(frozen=True)
class Plans:
    views: list[QueueView]
    made_at_change: int  # the ledger view's change count it was planned at

    @property
    def default(self) -> QueueView | None:
        return self.views[0] if self.views else None


class Planner:
    def __init__(self, settings: Settings, ledger: Ledger, hub: Hub) -> None:
        self.settings = settings
        self.ledger = ledger
        self.hub = hub
        self.plans = Plans([], -1)
        self._wake = threading.Event()
        self._changes = 0
        self._lock = threading.Lock()

    def changed(self) -> None:
        """The ledger changed (called on the watcher thread)."""
        with self._lock:
            self._changes += 1
        self._wake.set()

    def start(self, stop: threading.Event) -> None:
        threading.Thread(target=self._loop, args=(stop,), name="ui-planner", daemon=True).start()

    def _loop(self, stop: threading.Event) -> None:
        from cosmoskit import api

        engine = api.Engine(self.settings, self.ledger)
        try:
            while not stop.is_set():
                with self._lock:
                    at = self._changes
                self._wake.clear()
                try:
                    views = queue_views(engine)
                except Exception as exc:  # the ledger could not be read: say so, try again
                    views = [QueueView(str(self.settings.get("batching.strategy")), [], 0.0, 0.0,
                                       error=f"{type(exc).__name__}: {exc}")]
                self.plans = Plans(views, at)
                self.hub.publish("plan")
                self._wake.wait(IDLE_SECONDS)
        finally:
            engine.close()
