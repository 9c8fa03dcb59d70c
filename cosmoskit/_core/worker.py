"""The worker: turns the queue into batches on every free GPU slot, and follows them to the end.

On start it reattaches to batches nobody follows (never relaunching them); then it loops:
plan the queued runs, claim a batch for each free slot of each place it serves (the claim
and the slot's lease are one ledger transaction: cosmoskit/_core/slots.py), launch it, follow
it in a thread, settle its runs.  With ``worker.stage_ahead`` it also stages the next batch
behind each running one, and starts it the moment the running model exits, before that
one's outputs are fetched: the GPU never waits for a transfer or for the next loop.
SIGTERM or Ctrl-C stops the claiming; running batches go on on their hosts and the next
worker reattaches; staged batches that never started go back to the queue.  Queue changes
(new runs, cancels, pause) are seen on the next loop, without a restart.
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
from cosmoskit._core.records import BatchRecord, PromptRecord, RunRecord
from cosmoskit._core.slots import NoFreeSlot
from cosmoskit._core.strategy import Batch

ONCE_GIVES_UP_AFTER = 3  # failed launches in a row on every place before a `--once` worker stops


@dataclass
class Place:
    """One executor the worker serves: its followed batches and its launch failures."""

    label: str
    running: dict[str, threading.Thread] = field(default_factory=dict)  # batch id -> follower
    refollow: dict[str, float] = field(default_factory=dict)  # batch id -> when to follow it again
    failures: int = 0
    resume_at: float = 0.0

    def failed(self, backoff: float) -> float:
        """One more failure here; returns how long to wait before trying again (doubling)."""
        self.failures += 1
        return float(backoff * 2 ** (self.failures - 1))


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
        self.places = {label: Place(label) for label in executors or settings.served_executors()}
        self.stop = threading.Event()
        self.wake = threading.Event()  # set when a slot frees: plan again now, not at the next tick
        self.max_attempts = int(settings.get("worker.max_attempts"))
        self.backoff = float(settings.get("worker.backoff_seconds"))
        self.stage_ahead = bool(settings.get("worker.stage_ahead"))
        self._lock = threading.Lock()
        self.staged: dict[str, tuple[str, str]] = {}  # running batch -> (place, batch staged behind it)
        self.exited: set[str] = set()  # batches whose model has exited (a batch staged behind starts at once)
        self.launched: list[str] = []
        self.last_error = ""
        self.stuck = ""  # why a `--once` worker stopped with runs still queued

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
                self._check_staged()
                self._refollow()
                launched = self._fill()
                if once and not launched and not self._busy():
                    if not self._queued_runnable() and not self._refollowing():
                        break
                    if all(p.failures >= ONCE_GIVES_UP_AFTER for p in self.places.values()):
                        # `--once` means "until nothing more can be done now": every place keeps refusing
                        self.stuck = self.last_error
                        break
                self.wake.wait(self.interval)
                self.wake.clear()
        finally:
            restore()
            try:
                self._unstage_all("the worker stopped before it started")
            except (CosmoskitError, OSError) as exc:  # the next process to look gives their runs back
                self.log(f"could not give staged runs back to the queue: {exc}")
            if self.stop.is_set():
                self.log("stopping: running batches continue on their hosts; the next worker reattaches")
            else:
                for thread in self._threads():
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
            self.wake.set()

        for sig in previous:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    def _threads(self) -> list[threading.Thread]:
        with self._lock:
            return [t for p in self.places.values() for t in p.running.values()]

    def _busy(self) -> bool:
        with self._lock:
            return bool(self.staged) or any(p.running for p in self.places.values())

    def _reap(self) -> None:
        with self._lock:
            for place in self.places.values():
                for bid, thread in list(place.running.items()):
                    if not thread.is_alive():
                        del place.running[bid]
                        self.exited.discard(bid)

    def _refollowing(self) -> bool:
        with self._lock:
            return any(p.refollow for p in self.places.values())

    def _refollow(self) -> None:
        """Follow again, after a pause that doubles, a batch whose follower stopped on an error (a full disk,
        a bug): it is still this worker's, and its GPU stays leased until someone settles it."""
        now = time.monotonic()
        for place in self.places.values():
            with self._lock:
                due = [b for b, at in place.refollow.items() if at <= now and b not in place.running]
            for batch_id in due:
                with self.ledger.read() as tx:
                    batch = tx.batch(batch_id)
                with self._lock:
                    place.refollow.pop(batch_id, None)
                if batch is not None and batch["state"] in BATCH_ACTIVE:
                    self.log(f"following batch {batch_id} again")
                    self._start_follow(place, batch_id)

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
        """Reattach: finish what ended, requeue what vanished (or was staged and never started), follow
        what still runs."""
        results = self.engine.reconcile(finish=True, max_attempts=self.max_attempts)
        with self.ledger.read() as tx:
            running = [b.copy() for b in tx.active_batches() if results.get(b["id"]) == "running"]
        for batch in running:
            place = self.places.get(batch["executor"])
            if place is None:
                self.log(f"batch {batch['id']} runs on {batch['executor']}, which this worker does not serve")
                continue
            self.log(f"reattached to batch {batch['id']} on {batch['executor']}")
            self._start_follow(place, batch["id"])

    def _adopt_orphans(self) -> None:
        """Batches whose worker or client died while they ran are settled by a live worker: checked every
        loop, so within one interval of the death being visible (a zombie counts as dead)."""
        taken = self.engine.adopt_orphans(self.places)
        if not taken:
            return
        results = self.engine.reconcile(finish=True, max_attempts=self.max_attempts, batch_ids=taken)
        for batch_id in taken:
            with self.ledger.read() as tx:
                batch = tx.batch(batch_id)
            if batch is None:
                continue
            place = self.places[batch["executor"]]
            if batch["state"] in BATCH_ACTIVE:  # still running, or its host did not answer: follow it from now on
                if batch_id not in place.running:
                    self.log(f"adopted batch {batch_id} on {place.label} ({results.get(batch_id)}): its process died")
                    self._start_follow(place, batch_id)
            else:
                self.log(f"settled batch {batch_id} of a process that died: {results.get(batch_id, batch['state'])}")

    # ------------------------------------------------------------------ launching
    def _fill(self) -> int:
        """Claim, stage and start batches while a place has a free slot (or, with stage_ahead, a running
        batch with nothing staged behind it)."""
        now = time.monotonic()
        places = [p for p in self.places.values() if now >= p.resume_at]
        if not places or self.paused():
            return 0
        runs, prompts = self._queued()
        if not runs:
            return 0
        batches = self._planned(runs, prompts)
        launched = 0
        for place in places:
            while batches and not self.stop.is_set():
                try:
                    record = self.engine.launch(
                        batches[0].run_ids,
                        executor=place.label,
                        strategy=self.strategy,
                        partial=True,
                        on_event=self.on_event,
                        max_attempts=self.max_attempts,
                        stage_behind=self._followed(place) if self.stage_ahead else (),
                    )
                except NoFreeSlot:
                    break  # this place is full: the next one may take the batch
                except (CosmoskitError, OSError) as exc:
                    if isinstance(exc, OSError):
                        exc = from_os_error(exc)  # a full disk here, say
                    if "nothing to launch" in str(exc):
                        batches.pop(0)  # another process claimed these runs first
                        continue
                    self.last_error = f"{place.label}: {exc}"
                    place.resume_at = time.monotonic() + place.failed(self.backoff)
                    self.log(
                        f"{place.label}: launch failed ({exc}); retrying there in "
                        f"{place.resume_at - time.monotonic():.0f} s"
                    )
                    break
                batches.pop(0)
                place.failures = 0
                launched += 1
                self.launched.append(record["id"])
                if record["state"] == "staged":
                    self._staged(place, record)
                else:
                    self.log(f"launched batch {record['id']} ({len(record['runs'])} runs) on {_where(place, record)}")
                    self._start_follow(place, record["id"])
        return launched

    def _planned(self, runs: list[RunRecord], prompts: dict[str, PromptRecord]) -> list[Batch]:
        """The strategy's batches, placed on every slot this worker serves (batching.objective): in the order
        of their planned start, which is the order launching them onto whichever slot frees first follows."""
        from cosmoskit._core.gpuview import busy_seconds, slot_count
        from cosmoskit._core.planning import schedule_for
        from cosmoskit._core.queries import prompts_of

        with self.ledger.read() as tx:
            active = [b.copy() for b in tx.active_batches() if b["executor"] in self.places]
            in_flight = {r["id"]: r.copy() for r in tx.active_runs()}
            known = {**prompts, **prompts_of(tx, list(in_flight.values()))}
        busy = busy_seconds(self.engine, active, in_flight, known)
        slots = slot_count(self.engine, list(self.places))
        return schedule_for(self.engine, runs, prompts, self.strategy, slots, busy).batches

    def _followed(self, place: Place) -> set[str]:
        """Batches at ``place`` this worker follows whose exit it has not seen: a batch staged behind one of
        them is started by this worker the moment it exits."""
        with self._lock:
            return set(place.running) - self.exited

    def _check_staged(self) -> None:
        """A staged batch whose predecessor ended without this worker seeing the exit (it stopped following
        it) starts now: the safety net under ``_on_exit``."""
        with self._lock:
            waiting = list(self.staged.items())
        if not waiting:
            return
        with self.ledger.read() as tx:
            over = [after for after, _ in waiting if (b := tx.batch(after)) is None or b["state"] != "running"]
        for after in over:
            self._on_exit(after)

    def _staged(self, place: Place, record: BatchRecord) -> None:
        after = str(record.get("after"))
        with self._lock:
            ready = after in self.exited
            if not ready:
                self.staged[after] = (place.label, record["id"])
        if ready:  # the batch before it exited while this one was staged
            self._start_staged(place, record["id"])
        else:
            self.log(
                f"staged batch {record['id']} ({len(record['runs'])} runs) on {_where(place, record)} after {after}"
            )

    def _on_exit(self, batch_id: str) -> None:
        """A followed batch's model exited: start the batch staged behind it now, before its outputs are
        fetched, and let the main loop fill the slot if nothing was staged."""
        with self._lock:
            self.exited.add(batch_id)
            nxt = self.staged.pop(batch_id, None)
        if nxt is not None:
            self._start_staged(self.places[nxt[0]], nxt[1])
        self.wake.set()

    def _start_staged(self, place: Place, batch_id: str) -> None:
        try:
            record = self.engine.start_staged(batch_id, on_event=self.on_event, max_attempts=self.max_attempts)
        except CosmoskitError as exc:
            self.log(f"batch {batch_id}: could not start ({exc}); its runs went back to the queue")
            return
        except OSError as exc:
            self.log(f"batch {batch_id}: could not start ({from_os_error(exc)}); its runs went back to the queue")
            return
        if record is None:
            self.log(f"staged batch {batch_id} was cancelled before it started")
            return
        self.log(f"started staged batch {batch_id} on {_where(place, record)}")
        self._start_follow(place, batch_id)

    def _unstage_all(self, why: str) -> None:
        with self._lock:
            waiting, self.staged = list(self.staged.values()), {}
        for _, batch_id in waiting:
            back = self.engine.unstage(batch_id, why)
            if back:
                self.log(f"staged batch {batch_id} never started: {len(back)} run(s) back in the queue")

    def _start_follow(self, place: Place, batch_id: str) -> None:
        def follow() -> None:
            try:
                self.engine.follow(
                    batch_id,
                    on_event=self.on_event,
                    max_attempts=self.max_attempts,
                    stop=self.stop,
                    on_exit=self._on_exit,
                )
            except CosmoskitError as exc:
                self._follow_failed(place, batch_id, str(exc))
            except OSError as exc:  # a full disk here, say: the batch stays reattachable
                self._follow_failed(place, batch_id, str(from_os_error(exc)))
            except Exception as exc:  # keep the worker alive; the batch stays reattachable
                self._follow_failed(place, batch_id, f"internal error while following: {exc!r}")
            finally:
                self.wake.set()

        thread = threading.Thread(target=follow, name=f"follow-{batch_id}", daemon=True)
        with self._lock:
            place.running[batch_id] = thread
        thread.start()


    def _follow_failed(self, place: Place, batch_id: str, message: str) -> None:
        with self._lock:
            wait = place.failed(self.backoff)
            place.refollow[batch_id] = time.monotonic() + wait
            self.last_error = f"{place.label}: {message}"
        self.log(f"batch {batch_id}: {message}; following it again in {wait:.0f} s")


def _where(place: Place, record: BatchRecord) -> str:
    devices = record.get("devices") or []
    if record.get("pinned") and devices:
        return f"{place.label} GPU {','.join(devices)}"
    return place.label
