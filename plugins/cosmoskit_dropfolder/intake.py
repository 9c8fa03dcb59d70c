"""Noticing folders and telling when one is complete.

A watchdog observer (inotify, or polling for NFS/SMB) only records which top-level folder something
happened in and wakes the main thread; a rescan every ``watch.rescan_seconds`` (and at once after an
inotify overflow) is the safety net for lost events.  A folder is complete when its READY marker
exists, or when two walks ``watch.settle_seconds`` apart saw the same files and no event came in
between (``settle``, a pure function); files that look like a copy in progress hold it back.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cosmoskit_dropfolder import layout
from cosmoskit_dropfolder.contents import Sig, Walk, printable, walk

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

PROCESSED = "processed"
REJECTED = "rejected"
RESERVED = (PROCESSED, REJECTED)

TrackState = Literal["waiting", "busy", "done"]
Say = Callable[..., None]   # (kind, folder, message, **data): one event out


@dataclass
class Tracked:
    """A top-level folder of the drop folder, from its first event until it is taken (or left, done)."""

    name: str
    path: Path
    sig: Sig | None = None
    stable_since: float = 0.0
    last_event: float = 0.0
    due: float | None = 0.0          # when to walk it next (None: only on an event)
    state: TrackState = "waiting"    # busy: on its way to the ledger; done: handled where it lies
    done_sig: Sig | None = None      # the walk when it was handled (a change after that is reported)
    announced: bool = False
    partial_told: str | None = None
    blocked: bool = False            # held back by a file that looks like a copy in progress
    attempts: int = 0


# ---------------------------------------------------------------- the settle rule (pure)
Verdict = Literal["unchanged", "reopened", "empty", "copying", "settling", "complete"]


@dataclass(frozen=True)
class Look:
    """One walk of a tracked folder next to what was known before it."""

    handled: bool          # the folder was handled already (state done)
    same_as_handled: bool  # ... and this walk is the one it was handled with
    changed: bool          # this walk differs from the previous one
    empty: bool            # nothing but a marker in it
    marker: bool           # a READY file that counts (one in a folder handled before does not)
    partial: bool          # a file that looks like a copy in progress
    quiet_since: float     # the last change or event


@dataclass(frozen=True)
class Settled:
    verdict: Verdict
    due: float | None      # when to walk again (None: only on an event)


def settle(look: Look, now: float, settle_seconds: float) -> Settled:
    """Is the folder complete?  ``complete``: take it now; anything else: when to look again."""
    if look.handled:
        if look.same_as_handled:
            return Settled("unchanged", None)
        return Settled("reopened", now + settle_seconds)  # changed after it was handled: wait, ignoring READY
    if look.empty:
        return Settled("empty", None)                     # wait for content (an event or a rescan)
    if look.partial and not look.marker:
        return Settled("copying", now + max(settle_seconds, 0.5))
    if not look.marker and (look.changed or now - look.quiet_since < settle_seconds):
        if look.changed:
            return Settled("settling", now + max(settle_seconds, 0.05))
        return Settled("settling", max(look.quiet_since + settle_seconds, now + 0.05))
    return Settled("complete", None)


class _OverflowSpy(logging.Handler):
    """watchdog 7.1 only logs an inotify queue overflow; turn that warning into an immediate rescan."""

    def __init__(self, flag: threading.Event, wake: threading.Event) -> None:
        super().__init__(logging.WARNING)
        self.flag, self.wake = flag, wake

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.flag.set()
            self.wake.set()


# ---------------------------------------------------------------- intake (main thread, but notice())
class Intake:
    """The tracked folders of one drop folder: events and rescans in, folders ready to hash out."""

    def __init__(self, root: Path, settle_seconds: float, say: Say) -> None:
        self.root = root
        self.settle = settle_seconds
        self.say = say
        self.tracked: dict[str, Tracked] = {}
        self.told_files: set[str] = set()
        self.events: deque[tuple[str, bool]] = deque()
        self.wake = threading.Event()
        self.overflow = threading.Event()
        self.caught_up = threading.Event()
        self.observer_kind = "none"
        self._spy = _OverflowSpy(self.overflow, self.wake)

    # ------------------------------------------------------------ events in (observer thread)
    def notice(self, path: str) -> None:
        rel = os.path.relpath(path, self.root)
        if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
            return
        top, _, rest = rel.partition(os.sep)
        if top in RESERVED or top.startswith("."):
            return
        self.events.append((top, rest in layout.MARKER_NAMES))
        self.wake.set()

    def handler(self) -> Any:
        from watchdog.events import FileSystemEventHandler

        intake = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                try:
                    for p in (event.src_path, getattr(event, "dest_path", "")):
                        if p:
                            intake.notice(os.fsdecode(p))
                except Exception:
                    pass

        return Handler()

    def start_observer(self, polling: bool, rescan_every: float) -> Any:
        from watchdog import events as ev

        observer: BaseObserver
        try:
            if polling:
                from watchdog.observers.polling import PollingObserver

                observer = PollingObserver(timeout=1.0)
                self.observer_kind = "polling"
            else:
                from watchdog.observers import Observer

                observer = Observer()
                self.observer_kind = type(observer).__name__.replace("Observer", "").lower() or "native"
            # reads (our own hashing included) open and close files: those events are not changes
            wanted = [ev.FileCreatedEvent, ev.FileDeletedEvent, ev.FileModifiedEvent, ev.FileMovedEvent,
                      ev.FileClosedEvent, ev.FileAttribEvent, ev.DirCreatedEvent, ev.DirDeletedEvent,
                      ev.DirMovedEvent, ev.DirModifiedEvent]
            observer.schedule(self.handler(), str(self.root), recursive=True, event_filter=wanted)
            observer.start()
            return observer
        except Exception as exc:
            self.observer_kind = "rescan only"
            self.say("error", None, f"no file-system events ({exc}); relying on a rescan every "
                                    f"{rescan_every:g} s")
            return None

    def listen_for_overflow(self) -> None:
        logging.getLogger("watchdog.observers").addHandler(self._spy)

    def stop_listening(self) -> None:
        logging.getLogger("watchdog.observers").removeHandler(self._spy)

    # ------------------------------------------------------------ events and rescans (main thread)
    def track(self, name: str, now: float) -> Tracked | None:
        t = self.tracked.get(name)
        if t is None:
            path = self.root / name
            if not os.path.lexists(path):
                return None
            if not path.is_dir() and not path.is_symlink():
                if name not in self.told_files:
                    self.told_files.add(name)
                    self.say("ignored", printable(name), f"ignored file {printable(name)}: drop a folder "
                                                         f"(one sequence per folder), not a file")
                return None
            t = self.tracked[name] = Tracked(name, path, stable_since=now, last_event=now, due=now)
        return t

    def drain(self, now: float) -> None:
        while self.events:
            name, marker = self.events.popleft()
            t = self.track(name, now)
            if t is None:
                continue
            t.last_event = now
            if t.state in ("waiting", "done"):
                t.due = now if (marker and t.state == "waiting") else min(t.due if t.due is not None else 1e18,
                                                                            now + self.settle)

    def overflowed(self, now: float) -> bool:
        """After lost events every handled folder is walked again, as well as every new one."""
        if not self.overflow.is_set():
            return False
        self.overflow.clear()
        self.say("rescan", None, "inotify queue overflowed: events were lost; rescanning")
        for t in self.tracked.values():
            if t.state == "done":
                t.due = now
        return True

    def rescan(self, now: float, make: Callable[[], None]) -> None:
        first = not self.caught_up.is_set()
        try:
            names = sorted(e.name for e in os.scandir(self.root)
                           if e.name not in RESERVED and not e.name.startswith("."))
        except FileNotFoundError:
            self.say("error", None, f"the drop folder {self.root} was removed; made it again (restart the "
                                    f"watcher to get file-system events back; rescans go on)")
            make()
            return
        except OSError as exc:
            self.say("error", None, f"cannot list the drop folder ({exc.strerror or exc}); retrying")
            return
        present = set(names)
        new = [n for n in names if n not in self.tracked]
        for name in new:
            self.track(name, now)
        for name in list(self.tracked):
            if name not in present and self.tracked[name].state != "busy":
                del self.tracked[name]
        if first:
            count = sum(1 for n in new if n in self.tracked)
            self.say("catch-up", None, f"{count} folder(s) already in the drop folder", folders=count)
            self.caught_up.set()

    def complete(self, now: float) -> list[tuple[Tracked, Walk | None]]:
        """Walk every folder that is due; those complete now are marked busy and returned (a dropped link
        without a walk: it is never followed, and is rejected as it is)."""
        ready: list[tuple[Tracked, Walk | None]] = []
        for t in list(self.tracked.values()):
            if t.due is None or t.due > now or t.state not in ("waiting", "done"):
                continue
            t.due = None
            if t.path.is_symlink():
                ready.append((t, None))
                t.state = "busy"
                continue
            w = self._walk(t, now)
            if w is not None and self._check(t, w, now):
                ready.append((t, w))
                t.state = "busy"
        return ready

    def _walk(self, t: Tracked, now: float) -> Walk | None:
        try:
            return walk(t.path)
        except FileNotFoundError:
            self.tracked.pop(t.name, None)
        except OSError as exc:
            self.say("error", printable(t.name), f"{printable(t.name)}: cannot be read ({exc.strerror or exc}); "
                                                 f"trying again")
            t.due = now + max(self.settle, 1.0)
        return None

    def _check(self, t: Tracked, w: Walk, now: float) -> bool:
        """Apply the settle rule to one walk; True when the folder is complete."""
        changed = w.sig != t.sig
        if t.state != "done" and changed:
            t.sig, t.stable_since = w.sig, now
        use_marker = w.marker and t.done_sig is None
        verdict = settle(Look(handled=t.state == "done", same_as_handled=w.sig == t.done_sig, changed=changed,
                              empty=w.empty, marker=use_marker, partial=bool(w.partial),
                              quiet_since=max(t.stable_since, t.last_event)), now, self.settle)
        t.due = verdict.due
        if verdict.verdict == "unchanged":
            return False
        if verdict.verdict == "reopened":
            t.state = "waiting"
            t.sig, t.stable_since = w.sig, now
            t.announced = True
            t.done_sig = t.done_sig or ()
            return False
        if verdict.verdict == "empty":
            return False
        t.blocked = verdict.verdict == "copying"
        if verdict.verdict == "copying":
            if t.partial_told != w.partial:
                t.partial_told = w.partial
                self.say("waiting", printable(t.name), f"{printable(t.name)}: waiting, {printable(w.partial or '')} "
                                                       f"looks like a copy in progress")
            return False
        if verdict.verdict == "settling":
            if not t.announced:
                t.announced = True
                self.say("seen", printable(t.name), f"{printable(t.name)}: new folder; taken once a READY file "
                                                    f"appears or after {self.settle:g} s without change")
            return False
        t.sig = w.sig
        return True

    # ------------------------------------------------------------ after a folder was handled
    def finish(self, t: Tracked | None, folder: Path | None, fallback: Sig) -> None:
        """Forget a folder that left the drop folder (``folder`` None), or remember the walk it was handled
        with when it stays where it lies (a later change is then reported, a re-touch is not)."""
        if t is None:
            return
        if folder is not None and os.path.isdir(folder):
            try:
                t.done_sig = walk(folder).sig
            except OSError:
                t.done_sig = fallback
            t.state, t.due, t.attempts = "done", None, 0
        else:
            self.tracked.pop(t.name, None)

    def retry_later(self, t: Tracked, delay: float, now: float) -> None:
        t.state, t.due = "waiting", now + delay

    def busy_elsewhere(self, t: Tracked, now: float) -> None:
        self.retry_later(t, max(self.settle, 1.0), now)  # another watcher has it

    def wake_at(self, soonest: float) -> float:
        for t in self.tracked.values():
            if t.due is not None and t.state in ("waiting", "done"):
                soonest = min(soonest, t.due)
        return soonest

    def idle(self) -> bool:
        return all(t.state != "waiting" or t.due is None or t.blocked for t in self.tracked.values())
