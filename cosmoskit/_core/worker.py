"""The worker: turns the queue into batches on every free executor, and follows them to the end.

On start it reattaches to batches nobody follows (never relaunching them); then it loops:
plan the queued runs, claim a batch for each free executor slot, launch it, follow it in a
thread, settle its runs.  SIGTERM or Ctrl-C stops the claiming; running batches go on on their
hosts and the next worker reattaches.  Queue changes (new runs, cancels, pause) are seen on the
next loop, without a restart.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cosmoskit._core.config import Settings
from cosmoskit._core.engine import Engine, Event
from cosmoskit._core.errors import CosmoskitError, from_os_error
from cosmoskit._core.ledger import BATCH_ACTIVE, Ledger
from cosmoskit._core.records import PromptRecord, RunRecord

ONCE_GIVES_UP_AFTER = 3  # failed launches in a row on every place before a `--once` worker stops


@dataclass
class Slot:
    label: str
    capacity: int
    running: dict[str, threading.Thread] = field(default_factory=dict)  # batch id -> follower
    failures: int = 0
    resume_at: float = 0.0

    def free(self, now: float) -> bool:
        return len(self.running) < self.capacity and now >= self.resume_at


class Worker:
    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        *,
        executors: list[str] | None = None,
        strategy: str | None = None,
        on_event: Event | None = None,
        interval: float | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.engine = Engine(settings, ledger)
        self.strategy = strategy
        self.on_event = on_event or (lambda kind, data: None)
        self.log = log or (lambda text: None)
        self.interval = interval if interval is not None else min(2.0, float(settings.get("timeouts.poll_seconds")))
        labels = executors or settings.served_executors()
        self.slots = {label: Slot(label, self._capacity(label)) for label in labels}
        self.stop = threading.Event()
        self.max_attempts = int(settings.get("worker.max_attempts"))
        self.backoff = float(settings.get("worker.backoff_seconds"))
        self._lock = threading.Lock()
        self.launched: list[str] = []
        self.last_error = ""
        self.stuck = ""  # why a `--once` worker stopped with runs still queued

    def _capacity(self, label: str) -> int:
        ex = self.engine.executor(label)
        return max(1, int(getattr(ex, "concurrency", lambda: 1)()))

    # ------------------------------------------------------------------ loop
    def run(self, *, once: bool = False, stop: threading.Event | None = None) -> None:
        if stop is not None:
            self.stop = stop
        restore = self._install_signals()
        try:
            self._adopt()
            while not self.stop.is_set():
                self._reap()
                self._adopt_orphans()
                launched = self._fill_slots()
                if once and not launched and not self._busy():
                    if not self._queued_runnable():
                        break
                    if all(s.failures >= ONCE_GIVES_UP_AFTER for s in self.slots.values()):
                        # `--once` means "until nothing more can be done now": every place keeps refusing
                        self.stuck = self.last_error
                        break
                self.stop.wait(self.interval)
        finally:
            restore()
            if self.stop.is_set():
                self.log("stopping: running batches continue on their hosts; the next worker reattaches")
            else:
                for slot in self.slots.values():
                    for thread in list(slot.running.values()):
                        thread.join()
            self.engine.close()

    def outcomes(self) -> list[RunRecord]:
        """Where the runs of the batches this worker launched are now (a run relaunched in a later batch
        counts once, as it ended): what a `--once` worker's exit code is made from."""
        with self.ledger.read() as tx:
            batches = [b for b in (tx.batch(i) for i in self.launched) if b is not None]
            final = {r: tx.run(r) for b in batches for r in b["runs"]}
        return [r for r in final.values() if r is not None]

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def handler(signum: int, frame: Any) -> None:
            self.stop.set()

        for sig in previous:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    def _busy(self) -> bool:
        return any(slot.running for slot in self.slots.values())

    def _reap(self) -> None:
        for slot in self.slots.values():
            for bid, thread in list(slot.running.items()):
                if not thread.is_alive():
                    del slot.running[bid]

    def paused(self) -> bool:
        with self.ledger.read() as tx:
            return bool((tx.meta_get("queue") or {}).get("paused"))

    def _queued(self) -> tuple[list[RunRecord], dict[str, PromptRecord]]:
        from cosmoskit._core.queries import queued

        with self.ledger.read() as tx:
            return queued(tx)

    def _queued_runnable(self) -> bool:
        return not self.paused() and bool(self._queued()[0])

    # ------------------------------------------------------------------ adopting
    def _adopt(self) -> None:
        """Reattach: finish what ended, requeue what vanished, follow what still runs."""
        results = self.engine.reconcile(finish=True, max_attempts=self.max_attempts)
        with self.ledger.read() as tx:
            running = [b.copy() for b in tx.active_batches() if results.get(b["id"]) == "running"]
        for batch in running:
            slot = self.slots.get(batch["executor"])
            if slot is None:
                self.log(f"batch {batch['id']} runs on {batch['executor']}, which this worker does not serve")
                continue
            self.log(f"reattached to batch {batch['id']} on {batch['executor']}")
            self._start_follow(slot, batch["id"])

    def _adopt_orphans(self) -> None:
        """Batches whose worker or client died while they ran are settled by a live worker: checked every
        loop, so within one interval of the death being visible (a zombie counts as dead)."""
        taken = self.engine.adopt_orphans(self.slots)
        if not taken:
            return
        results = self.engine.reconcile(finish=True, max_attempts=self.max_attempts, batch_ids=taken)
        for batch_id in taken:
            with self.ledger.read() as tx:
                batch = tx.batch(batch_id)
            if batch is None:
                continue
            slot = self.slots[batch["executor"]]
            if batch["state"] in BATCH_ACTIVE:  # still running, or its host did not answer: follow it from now on
                if batch_id not in slot.running:
                    self.log(f"adopted batch {batch_id} on {slot.label} ({results.get(batch_id)}): its process died")
                    self._start_follow(slot, batch_id)
            else:
                self.log(f"settled batch {batch_id} of a process that died: {results.get(batch_id, batch['state'])}")

    # ------------------------------------------------------------------ launching
    def _fill_slots(self) -> int:
        now = time.monotonic()
        free = [s for s in self.slots.values() if s.free(now)]
        if not free or self.paused():
            return 0
        runs, prompts = self._queued()
        if not runs:
            return 0
        from cosmoskit._core.planning import plan

        batches = plan(self.engine, runs, prompts, self.strategy)
        launched = 0
        for slot in free:
            while batches and slot.free(time.monotonic()) and not self.stop.is_set():
                batch = batches.pop(0)
                try:
                    record = self.engine.launch(
                        batch.run_ids,
                        executor=slot.label,
                        strategy=self.strategy,
                        partial=True,
                        on_event=self.on_event,
                        max_attempts=self.max_attempts,
                    )
                except CosmoskitError as exc:
                    if "nothing to launch" in str(exc):
                        continue  # another worker claimed these runs first
                    slot.failures += 1
                    self.last_error = f"{slot.label}: {exc}"
                    slot.resume_at = time.monotonic() + self.backoff * 2 ** (slot.failures - 1)
                    self.log(
                        f"{slot.label}: launch failed ({exc}); retrying there in "
                        f"{slot.resume_at - time.monotonic():.0f} s"
                    )
                    break
                slot.failures = 0
                launched += 1
                self.launched.append(record["id"])
                self.log(f"launched batch {record['id']} ({len(record['runs'])} runs) on {slot.label}")
                self._start_follow(slot, record["id"])
        return launched

    def _start_follow(self, slot: Slot, batch_id: str) -> None:
        def follow() -> None:
            try:
                self.engine.follow(batch_id, on_event=self.on_event, max_attempts=self.max_attempts, stop=self.stop)
            except CosmoskitError as exc:
                self.log(f"batch {batch_id}: {exc}")
            except OSError as exc:  # a full disk here, say: the batch stays reattachable
                self.log(f"batch {batch_id}: {from_os_error(exc)}")
            except Exception as exc:  # keep the worker alive; the batch stays reattachable
                self.log(f"batch {batch_id}: internal error while following: {exc!r}")

        thread = threading.Thread(target=follow, name=f"follow-{batch_id}", daemon=True)
        slot.running[batch_id] = thread
        thread.start()
