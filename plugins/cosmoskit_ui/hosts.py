"""Each executor's place (GPUs, containers or Slurm jobs, zombies and orphans), asked off the request path.

One thread per executor asks its ``status()`` over and over; pages only read the last answer, so a
slow or dead SSH host never holds a page up.  A host whose answer is overdue shows as "not
answering" with how long it has been; one that raised or said it is unreachable shows as down.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cosmoskit import api
from cosmoskit.api import BatchRecord, ExecutorStatus, Ledger, Settings
from cosmoskit_ui.hub import Hub

INTERVAL_SECONDS = 5.0
OVERDUE_SECONDS = 20.0  # an answer this late means the host is down for the page


@dataclass
class HostState:
    label: str
    type: str = ""
    status: ExecutorStatus | None = None
    error: str | None = None  # the executor could not even be set up (configuration)
    asked_at: float | None = None  # monotonic time of the question under way
    answered_at: float | None = None  # monotonic time of the last answer
    seconds: float | None = None  # how long the last answer took
    warnings: list[str] = field(default_factory=list)

    def view(self, now: float) -> dict[str, Any]:
        """What the Running page shows."""
        overdue = self.asked_at is not None and now - self.asked_at > OVERDUE_SECONDS
        status = self.status
        if self.error:
            state, detail = "down", self.error
        elif status is None:
            waited = now - (self.asked_at or now)
            state, detail = ("down", f"no answer for {waited:.0f} s") if overdue else ("asking", "")
        elif overdue:
            state, detail = "down", f"not answering for {now - (self.asked_at or now):.0f} s"
        elif not status.reachable:
            state, detail = "down", status.error or "unreachable"
        else:
            state, detail = "up", ""
        return {
            "label": self.label, "type": self.type, "state": state, "detail": detail,
            "host": status.host if status else "", "gpus": list(status.gpus) if status else [],
            "gpu_note": status.gpu_note if status else None, "jobs": list(status.jobs) if status else [],
            "lines": list(status.lines) if status else [], "disk_free": status.disk_free_bytes if status else None,
            "warnings": list(self.warnings), "age": None if self.answered_at is None else now - self.answered_at,
        }


def mismatches(label: str, batches: list[BatchRecord], status: ExecutorStatus, ex: Any) -> list[str]:
    """Zombies (running in the ledger, gone at the place) and orphans (running there, unknown to the ledger),
    as `cosmoskit status` reports them."""
    if not status.reachable:
        return []
    found = []
    for b in batches:
        if b["state"] != "running":
            continue
        try:
            state = ex.poll(b.get("handle") or {}).state
        except api.CosmoskitError:
            continue
        if state == "vanished":
            found.append(f"zombie: batch {b['id']} ({len(b['runs'])} runs) is running in the ledger but nothing "
                         f"runs on {label}; `cosmoskit attach` requeues its runs")
    for job in status.jobs:
        known = {str((b.get("handle") or {}).get(job.handle_key)) for b in batches}
        if job.handle_key and job.handle_value not in known:
            found.append(f"orphan: {job.describe()} has no batch in the ledger; "
                         f"`cosmoskit kill --host {label}` stops it")
    return found


class HostMonitor:
    def __init__(self, settings: Settings, ledger: Ledger, hub: Hub, interval: float = INTERVAL_SECONDS) -> None:
        self.settings = settings
        self.ledger = ledger
        self.hub = hub
        self.interval = interval
        self.states = {label: HostState(label) for label in settings.executor_names()}
        self._lock = threading.Lock()
        self._wakes = {label: threading.Event() for label in self.states}

    def start(self, stop: threading.Event) -> None:
        for label in self.states:
            threading.Thread(target=self._loop, args=(label, stop), name=f"ui-host-{label}", daemon=True).start()

    def refresh(self) -> None:
        """Ask every host again now (the Running page's refresh button)."""
        for wake in self._wakes.values():
            wake.set()

    def views(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            return [s.view(now) for s in self.states.values()]

    def _loop(self, label: str, stop: threading.Event) -> None:
        engine = api.Engine(self.settings, self.ledger)  # its own: an executor's connection is not shared
        try:
            while not stop.is_set():
                self._ask(engine, label)
                self._wakes[label].wait(self.interval)
                self._wakes[label].clear()
        finally:
            engine.close()

    def _ask(self, engine: Any, label: str) -> None:
        state = self.states[label]
        with self._lock:
            state.asked_at = time.monotonic()
        started = time.monotonic()
        status: ExecutorStatus | None = None
        error = None
        warnings: list[str] = []
        kind = state.type
        try:
            ex = engine.executor(label)
            kind = ex.name
            status = ex.status()
            with self.ledger.read() as tx:
                mine = [dict(b) for b in tx.active_batches() if b["executor"] == label]
            warnings = list(status.warnings) + mismatches(label, mine, status, ex)  # type: ignore[arg-type]
        except api.CosmoskitError as exc:
            status = ExecutorStatus.unreachable("", str(exc))
        except Exception as exc:  # an executor plugin's bug must not end the monitor
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            state.type, state.status, state.error, state.warnings = kind, status, error, warnings
            state.asked_at, state.answered_at = None, time.monotonic()
            state.seconds = state.answered_at - started
        self.hub.publish("hosts")
