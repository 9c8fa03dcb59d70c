"""The ledger as the pages see it: one consistent read, reused until the ledger changes.

A 10,000-run ledger reads in well under 0.1 s, so the whole of it is read in one transaction
whenever it changed and every page filters, sorts and paginates that copy on the server.  A
watcher thread notices a change by the ledger files' signatures (every commit renames new files
into place, so their inode and mtime change) and publishes it to open pages; nothing is read
until a page asks.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from cosmoskit.api import BatchRecord, Ledger, PromptRecord, RunRecord
from cosmoskit_ui.hub import Hub

WATCH_SECONDS = 0.1  # a few stat calls: cheap, and most of the 1 s a change may take to reach a page


@dataclass(frozen=True)
class Snapshot:
    """Everything the list pages show, from one read transaction. Treat as read-only."""

    version: int
    runs: list[RunRecord]  # newest first
    by_id: dict[str, RunRecord]
    prompts: dict[str, PromptRecord]
    active_batches: list[BatchRecord]
    paused: bool
    upscales: dict[str, list[str]] = field(default_factory=dict)  # source run -> its upscales
    run_counts: dict[str, int] = field(default_factory=dict)  # prompt id -> runs

    def queued(self) -> list[RunRecord]:
        return [r for r in self.runs if r["status"] == "queued"]


def signature(root: Path) -> tuple[tuple[str, int, int, int], ...]:
    """What changes whenever any ledger file is committed (cheap: a few stat calls)."""
    found: list[tuple[str, int, int, int]] = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if not name.endswith(".json") or name.startswith("."):
                continue
            path = os.path.join(folder, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            found.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(sorted(found))


def read_snapshot(ledger: Ledger, version: int) -> Snapshot:
    with ledger.read() as tx:
        runs: list[RunRecord] = [cast(RunRecord, dict(r)) for r in tx.runs()]
        prompts = {p["id"]: cast(PromptRecord, dict(p)) for p in tx.prompts()}
        batches = [cast(BatchRecord, dict(b)) for b in tx.active_batches()]
        paused = bool((tx.meta_get("queue") or {}).get("paused"))
    runs.sort(key=lambda r: r.get("created") or "", reverse=True)
    upscales: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for r in runs:
        parent = r.get("parent_run")
        if parent:
            upscales.setdefault(parent, []).append(r["id"])
        pid = r.get("prompt_id")
        if pid:
            counts[pid] = counts.get(pid, 0) + 1
    return Snapshot(version, runs, {r["id"]: r for r in runs}, prompts, batches, paused, upscales, counts)


class LedgerView:
    """The latest snapshot, and a thread that tells the hub when the ledger changed."""

    def __init__(self, ledger: Ledger, hub: Hub) -> None:
        self.ledger = ledger
        self.hub = hub
        self.root = Path(ledger.root)
        self._lock = threading.Lock()
        self._seen = signature(self.root)  # what the watcher last told pages about
        self._read_sig: tuple[tuple[str, int, int, int], ...] = ()  # what the snapshot was read at
        self._reads = 0
        self._snapshot: Snapshot | None = None
        self._thread: threading.Thread | None = None
        self.listeners: list[Callable[[], None]] = []  # told (on the watcher thread) after each change

    def get(self) -> Snapshot:
        """The current snapshot, read again if the ledger changed since (one reader at a time).

        This keeps its own record of what it read: the watcher's (what pages were told) is separate,
        so a page reading first never hides a change from the others."""
        with self._lock:
            sig = signature(self.root)
            if self._snapshot is None or sig != self._read_sig:
                self._read_sig = sig
                self._reads += 1
                self._snapshot = read_snapshot(self.ledger, self._reads)
            return self._snapshot

    def start(self, stop: threading.Event) -> None:
        self._thread = threading.Thread(target=self._watch, args=(stop,), name="ui-ledger-watch", daemon=True)
        self._thread.start()

    def _watch(self, stop: threading.Event) -> None:
        while not stop.wait(WATCH_SECONDS):
            try:
                sig = signature(self.root)
            except OSError:
                continue
            changed = sig != self._seen
            self._seen = sig
            if changed:
                self.hub.publish("ledger")
                for listener in self.listeners:
                    listener()

