"""``cosmoskit watch``: a render folder copied into the drop folder becomes queued runs, exactly once.

How it works (one main thread owns all decisions and every ledger write):

1. **Noticing.** A watchdog observer (inotify, or polling for NFS/SMB) only records which top-level
   folder something happened in and wakes the main thread.  A rescan of the drop folder every
   ``watch.rescan_seconds`` (and at once after an inotify overflow) is the safety net for lost
   events; the first scan, made after the observer started, catches up on folders dropped while
   no watcher ran.
2. **Complete?** A folder is taken when its ``READY`` marker exists, or when two walks
   ``watch.settle_seconds`` apart saw the same (name, size, mtime) of every file and no event came
   in between.  Files that look like a copy in progress (``*.part``, rsync's ``.name.XXXXXX`` …)
   hold it back.  Empty folders wait.
3. **Identity.** A pool thread hashes the content (every file's SHA-256, except READY and what
   cosmoskit writes).  The ingest table is keyed by folder path + content hash.
4. **Claim, move, build, commit.** One transaction claims the sequence (with the folder it will
   live in), then the folder is moved to ``processed/`` (``watch.after: move``) and a pool thread
   reads the sidecar, encodes frame sequences (``prepare``), probes the videos and validates one
   run per weight set.  One transaction then adds the prompt, its runs and marks the ingest
   record ``ingested``: all or nothing, and never twice (it re-checks the record under the lock).
   A crash between the steps leaves a ``claimed`` record that the next watcher resumes.
5. **Refusing.** Bad input goes to ``rejected/NAME`` with ``REJECTED.txt`` (one line per problem);
   a folder that changed after it was ingested is reported, never queued again.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cosmoskit import api
from cosmoskit.api import CosmoskitError

from cosmoskit_dropfolder import layout, prepare, sidecar
from cosmoskit_dropfolder.settings import INGESTS

PROCESSED = "processed"
REJECTED = "rejected"
RESERVED = (PROCESSED, REJECTED)
INGESTED_FILE = "INGESTED.txt"
REJECTED_FILE = "REJECTED.txt"
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".filepart", ".download", ".!sync",
                    ".opdownload", ".swp")
_RSYNC_TEMP = re.compile(r"^\..+\.[A-Za-z0-9]{6}$")
MAX_ATTEMPTS = 3

Emit = Callable[[dict[str, Any]], None]


def printable(text: str) -> str:
    """A name safe for the ledger and one log line (undecodable bytes and control characters replaced)."""
    text = os.fsencode(text).decode("utf-8", "replace")
    return re.sub(r"[\x00-\x1f\x7f]", "?", text)


def ingest_key(path: str, digest: str) -> str:
    return f"{path}|{digest[:24]}"


# ---------------------------------------------------------------- walking a folder
@dataclass
class Walk:
    sig: tuple[tuple[str, int, int], ...]   # every file but cosmoskit's own: (relative path, size, mtime_ns)
    marker: bool
    partial: str | None
    problems: list[str]

    @property
    def empty(self) -> bool:
        return not any(not os.path.basename(rel) in layout.MARKER_NAMES for rel, _, _ in self.sig)

    def digest(self) -> str:
        h = hashlib.sha256()
        for rel, size, mtime in self.sig:
            h.update(f"{rel}\t{size}\t{mtime}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()


def walk(folder: Path) -> Walk:
    """Stat every file below ``folder`` (symbolic links are not followed; one reaching outside is a problem)."""
    root = os.path.realpath(folder)
    outputs = prepare.own_outputs(folder)
    sig: list[tuple[str, int, int]] = []
    problems: list[str] = []
    marker = False
    partial = None
    stack = [("", str(folder))]
    while stack:
        rel_dir, path = stack.pop()
        with os.scandir(path) as it:
            entries = list(it)
        for e in entries:
            rel = f"{rel_dir}{e.name}"
            if not rel_dir and (e.name in (layout.OWN_NAMES) or e.name.startswith(layout.OWN_PREFIX)
                                or e.name in outputs):
                continue
            if e.is_symlink():
                target = os.path.realpath(e.path)
                if not os.path.isabs(os.readlink(e.path)) and (target == root or target.startswith(root + os.sep)) \
                        and os.path.exists(target):
                    st = os.stat(e.path)
                    sig.append((rel, st.st_size, st.st_mtime_ns))
                else:
                    where = "nothing (a broken link)" if not os.path.exists(target) else printable(target)
                    problems.append(f"{printable(rel)}: a symbolic link to {where}; names may not reach outside "
                                    f"the folder (copy the file in instead)")
                continue
            if e.is_dir(follow_symlinks=False):
                stack.append((rel + "/", e.path))
                continue
            if not e.is_file(follow_symlinks=False):
                problems.append(f"{printable(rel)}: not a regular file")
                continue
            st = e.stat(follow_symlinks=False)
            sig.append((rel, st.st_size, st.st_mtime_ns))
            if not rel_dir and e.name in layout.MARKER_NAMES:
                marker = True
            low = e.name.lower()
            if low.endswith(PARTIAL_SUFFIXES) or _RSYNC_TEMP.match(e.name) or e.name.startswith(".~lock"):
                partial = partial or rel
    sig.sort()
    return Walk(tuple(sig), marker, partial, problems)


def content_hash(folder: Path, w: Walk) -> tuple[str, int, int]:
    """(sha256 over every file's name and content, files, bytes); READY and hidden files are left out."""
    h = hashlib.sha256()
    files = size = 0
    for rel, _, _ in w.sig:
        base = os.path.basename(rel)
        if base in layout.MARKER_NAMES or base.startswith(".") or "/." in f"/{rel}":
            continue
        fh = hashlib.sha256()
        with open(folder / rel, "rb") as f:
            while block := f.read(1 << 20):
                fh.update(block)
                size += len(block)
        files += 1
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + fh.hexdigest().encode() + b"\n")
    return h.hexdigest(), files, size


# ---------------------------------------------------------------- state
@dataclass
class Tracked:
    name: str
    path: Path
    sig: tuple | None = None
    stable_since: float = 0.0
    last_event: float = 0.0
    due: float | None = 0.0
    state: str = "waiting"          # waiting | busy | done
    done_sig: tuple | None = None
    announced: bool = False
    partial_told: str | None = None
    blocked: bool = False           # held back by a file that looks like a copy in progress
    attempts: int = 0


@dataclass
class Fingerprint:
    name: str
    path: str         # where it was dropped (its identity)
    folder: Path      # where it is now
    hash: str
    sig_digest: str
    sig: tuple
    files: int
    bytes: int
    problems: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return ingest_key(self.path, self.hash)


@dataclass
class Built:
    fp: Fingerprint
    dest: Path
    prompt: dict[str, Any]
    runs: list[dict[str, Any]]
    named_by_sidecar: bool
    notes: list[str]
    attempts: int = 0


@dataclass
class Rejected:
    fp: Fingerprint
    dest: Path
    lines: list[str]
    why: str = "input"


class _OverflowSpy(logging.Handler):
    """watchdog 7.1 only logs an inotify queue overflow; turn that warning into an immediate rescan."""

    def __init__(self, flag: threading.Event, wake: threading.Event) -> None:
        super().__init__(logging.WARNING)
        self.flag, self.wake = flag, wake

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.flag.set()
            self.wake.set()


# ---------------------------------------------------------------- the watcher
class DropWatcher:
    def __init__(self, settings: Any, ledger: Any, *, folder: Path | None = None, emit: Emit | None = None,
                 settle: float | None = None, after: str | None = None, polling: bool | None = None,
                 rescan: float | None = None, jobs: int | None = None) -> None:
        w = settings.section("watch")
        self.settings = settings
        self.ledger = ledger
        root = Path(folder).expanduser() if folder else settings.home / Path(w["folder"]).expanduser()
        self.root = Path(os.path.abspath(root))
        self.settle = float(w["settle_seconds"] if settle is None else settle)
        self.after = after or w["after"]
        self.polling = bool(w["polling"] if polling is None else polling)
        self.rescan_every = float(w["rescan_seconds"] if rescan is None else rescan)
        self.jobs = int(w["jobs"] if jobs is None else jobs)
        self.default_text = w["prompt"]
        self.default_priority = int(w["priority"])
        self.default_fps = float(w["fps"])
        self.processed = self.root / PROCESSED
        self.rejected = self.root / REJECTED
        self._emit = emit or (lambda event: None)
        self.me = api.process_owner()
        self.tracked: dict[str, Tracked] = {}
        self.told_files: set[str] = set()
        self._events: deque[tuple[str, bool]] = deque()
        self._wake = threading.Event()
        self._overflow = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._futures: dict[Future, tuple[str, str]] = {}
        self._built: list[Built] = []
        self._records: list[tuple[str, dict[str, Any]]] = []
        self._retry: list[tuple[float, Built | Fingerprint, Path | None]] = []
        self._planned: set[str] = set()
        self._building: dict[Future, tuple[Fingerprint, Path, int]] = {}
        self._retry_attempts: dict[str, int] = {}
        self.counts = {"queued": 0, "runs": 0, "rejected": 0, "changed": 0, "duplicate": 0, "errors": 0}
        self.observer_kind = "none"
        self.caught_up = threading.Event()

    # ------------------------------------------------------------ events out
    def emit(self, kind: str, folder: str | None, message: str, **data: Any) -> None:
        event = {"event": kind, "time": api.now(), "folder": folder, "message": message, **data}
        try:
            self._emit(event)
        except Exception:  # a broken sink must not stop the watcher
            pass

    # ------------------------------------------------------------ events in (observer thread)
    def notice(self, path: str) -> None:
        rel = os.path.relpath(path, self.root)
        if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
            return
        top, _, rest = rel.partition(os.sep)
        if top in RESERVED or top.startswith("."):
            return
        self._events.append((top, rest in layout.MARKER_NAMES))
        self._wake.set()

    def _handler(self) -> Any:
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                try:
                    for p in (event.src_path, getattr(event, "dest_path", "")):
                        if p:
                            watcher.notice(os.fsdecode(p))
                except Exception:
                    pass

        return Handler()

    def _start_observer(self) -> Any:
        from watchdog import events as ev

        try:
            if self.polling:
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
            observer.schedule(self._handler(), str(self.root), recursive=True, event_filter=wanted)
            observer.start()
            return observer
        except Exception as exc:
            self.observer_kind = "rescan only"
            self.emit("error", None, f"no file-system events ({exc}); relying on a rescan every "
                                     f"{self.rescan_every:g} s")
            return None

    # ------------------------------------------------------------ the loop
    def run(self, stop: threading.Event | None = None, *, once: bool = False) -> dict[str, int]:
        stop = stop or threading.Event()
        for d in (self.root, self.processed, self.rejected):
            d.mkdir(parents=True, exist_ok=True)
        from cosmoskit import api

        api.operation_class("transfer")  # load the registry once, before threads use it
        spy = _OverflowSpy(self._overflow, self._wake)
        wd_logger = logging.getLogger("watchdog.observers")
        wd_logger.addHandler(spy)
        self._pool = ThreadPoolExecutor(max(1, self.jobs), thread_name_prefix="cosmoskit-watch")
        observer = self._start_observer()
        self.emit("watching", None, f"watching {self.root} ({self.observer_kind}): a folder is taken on "
                                    f"a READY file or {self.settle:g} s without change, then "
                                    f"{'moved to processed/' if self.after == 'move' else 'marked in place'}",
                  root=str(self.root), settle=self.settle, after=self.after, observer=self.observer_kind)
        next_rescan = 0.0
        try:
            self._recover()
            while not stop.is_set():
                try:
                    now = time.monotonic()
                    self._drain(now)
                    if now >= next_rescan or self._overflow.is_set():
                        if self._overflow.is_set():
                            self._overflow.clear()
                            self.emit("rescan", None, "inotify queue overflowed: events were lost; rescanning")
                            for t in self.tracked.values():
                                if t.state == "done":
                                    t.due = now
                        first = not self.caught_up.is_set()
                        self._rescan(now, first)
                        next_rescan = now + self.rescan_every
                    self._check_due(time.monotonic())
                    self._collect()
                    self._flush()
                    if once and self._idle():
                        break
                except Exception as exc:  # a bug here must not end the watcher: say so, and go on
                    self.counts["errors"] += 1
                    self.emit("error", None, f"internal error: {type(exc).__name__}: {exc} (continuing)")
                    stop.wait(1.0)
                self._wake.wait(self._timeout(next_rescan))
                self._wake.clear()
        finally:
            if observer is not None:
                observer.stop()
            self._shutdown()
            if observer is not None:
                observer.join(timeout=5)
            wd_logger.removeHandler(spy)
        return dict(self.counts)

    def _timeout(self, next_rescan: float) -> float:
        now = time.monotonic()
        wake = next_rescan
        for t in self.tracked.values():
            if t.due is not None and t.state in ("waiting", "done"):
                wake = min(wake, t.due)
        for at, _, _ in self._retry:
            wake = min(wake, at)
        return max(0.0, min(wake - now, 5.0))

    def _idle(self) -> bool:
        if self._futures or self._built or self._retry or self._records:
            return False
        return all(t.state != "waiting" or t.due is None or t.blocked for t in self.tracked.values())

    def _shutdown(self) -> None:
        """Finish what is in flight (so nothing is left claimed), start nothing new."""
        if self._pool is None:
            return
        for fut in list(self._futures):
            fut.cancel()
        self._pool.shutdown(wait=True)
        try:
            self._collect(final=True)
            self._flush()
        except Exception as exc:  # pragma: no cover - best effort on the way out
            self.emit("error", None, f"while stopping: {exc}")
        self._pool = None

    # ------------------------------------------------------------ noticing
    def _track(self, name: str, now: float) -> Tracked | None:
        t = self.tracked.get(name)
        if t is None:
            path = self.root / name
            if not os.path.lexists(path):
                return None
            if not path.is_dir() and not path.is_symlink():
                if name not in self.told_files:
                    self.told_files.add(name)
                    self.emit("ignored", printable(name), f"ignored file {printable(name)}: drop a folder "
                                                          f"(one sequence per folder), not a file")
                return None
            t = self.tracked[name] = Tracked(name, path, stable_since=now, last_event=now, due=now)
        return t

    def _drain(self, now: float) -> None:
        while self._events:
            name, marker = self._events.popleft()
            t = self._track(name, now)
            if t is None:
                continue
            t.last_event = now
            if t.state in ("waiting", "done"):
                t.due = now if (marker and t.state == "waiting") else min(t.due if t.due is not None else 1e18,
                                                                            now + self.settle)

    def _rescan(self, now: float, first: bool) -> None:
        try:
            names = sorted(e.name for e in os.scandir(self.root)
                           if e.name not in RESERVED and not e.name.startswith("."))
        except FileNotFoundError:
            self.emit("error", None, f"the drop folder {self.root} was removed; made it again (restart the "
                                     f"watcher to get file-system events back; rescans go on)")
            for d in (self.root, self.processed, self.rejected):
                d.mkdir(parents=True, exist_ok=True)
            return
        except OSError as exc:
            self.emit("error", None, f"cannot list the drop folder ({exc.strerror or exc}); retrying")
            return
        present = set(names)
        new = [n for n in names if n not in self.tracked]
        for name in new:
            self._track(name, now)
        for name in list(self.tracked):
            if name not in present and self.tracked[name].state != "busy":
                del self.tracked[name]
        if first:
            count = sum(1 for n in new if n in self.tracked)
            self.emit("catch-up", None, f"{count} folder(s) already in the drop folder", folders=count)
            self.caught_up.set()

    def _check_due(self, now: float) -> None:
        for t in list(self.tracked.values()):
            if t.due is None or t.due > now or t.state not in ("waiting", "done"):
                continue
            self._check(t, now)

    def _check(self, t: Tracked, now: float) -> None:
        t.due = None
        if t.path.is_symlink():
            self._submit_fingerprint(t)
            return
        try:
            w = walk(t.path)
        except FileNotFoundError:
            self.tracked.pop(t.name, None)
            return
        except OSError as exc:
            self.emit("error", printable(t.name), f"{printable(t.name)}: cannot be read ({exc.strerror or exc}); "
                                                  f"trying again")
            t.due = now + max(self.settle, 1.0)
            return
        if t.state == "done":
            if w.sig == t.done_sig:
                return
            t.state = "waiting"  # changed after it was handled: wait for quiet, ignoring READY
            t.sig, t.stable_since, t.due = w.sig, now, now + self.settle
            t.announced = True
            t.done_sig = t.done_sig or ()
            return
        if w.sig != t.sig:
            t.sig, t.stable_since = w.sig, now
            changed = True
        else:
            changed = False
        if w.empty:
            return  # wait for content (an event or a rescan brings us back)
        quiet_since = max(t.stable_since, t.last_event)
        use_marker = w.marker and t.done_sig is None
        t.blocked = bool(w.partial and not use_marker)
        if t.blocked:
            if t.partial_told != w.partial:
                t.partial_told = w.partial
                self.emit("waiting", printable(t.name), f"{printable(t.name)}: waiting, {printable(w.partial)} "
                                                        f"looks like a copy in progress")
            t.due = now + max(self.settle, 0.5)
            return
        if not use_marker and (changed or now - quiet_since < self.settle):
            t.due = max(quiet_since + self.settle, now + 0.05) if not changed else now + max(self.settle, 0.05)
            if not t.announced:
                t.announced = True
                self.emit("seen", printable(t.name), f"{printable(t.name)}: new folder; taken once a READY file "
                                                     f"appears or after {self.settle:g} s without change")
            return
        t.sig = w.sig
        self._submit_fingerprint(t, w)

    # ------------------------------------------------------------ stage 1: identity (pool)
    def _submit_fingerprint(self, t: Tracked, w: Walk | None = None) -> None:
        t.state = "busy"
        assert self._pool is not None
        fut = self._pool.submit(self._fingerprint, t.name, t.path, w)
        self._futures[fut] = ("fingerprint", t.name)
        fut.add_done_callback(lambda f: self._wake.set())

    def _fingerprint(self, name: str, path: Path, w: Walk | None) -> Fingerprint:
        problems: list[str] = []
        shown = printable(name)
        if name != shown or name.strip() != name:
            problems.append(f"the folder name {shown!r} holds control characters, undecodable bytes or "
                            f"surrounding spaces; rename it")
        if path.is_symlink():
            problems.append(f"{shown} is a symbolic link (to {printable(os.path.realpath(path))}); "
                            f"drop the folder itself, names may not reach outside the drop folder")
            return Fingerprint(shown, str(path), path, "0" * 64, "", (), 0, 0, problems)
        if w is None:
            w = walk(path)
        problems += w.problems
        digest, files, size = content_hash(path, w)
        return Fingerprint(shown, str(path), path, digest, w.digest(), w.sig, files, size, problems)

    # ------------------------------------------------------------ collecting pool results (main thread)
    def _collect(self, final: bool = False) -> None:
        done = [f for f in self._futures if f.done()]
        prints: list[tuple[Tracked | None, Fingerprint]] = []
        for fut in done:
            stage, name = self._futures.pop(fut)
            t = self.tracked.get(name)
            if fut.cancelled():
                if t is not None:
                    t.state, t.due = "waiting", time.monotonic()
                continue
            exc = fut.exception()
            if stage == "fingerprint":
                if exc is not None:
                    self._transient(t, name, exc)
                    continue
                prints.append((t, fut.result()))
            else:
                if exc is not None:
                    fp, dest, attempts = self._building.pop(fut)
                    self._build_failed(fp, dest, exc, attempts)
                    continue
                self._building.pop(fut, None)
                result = fut.result()
                if isinstance(result, Rejected):
                    self._reject(result.fp, result.dest, result.lines, result.why)
                else:
                    self._built.append(result)
        if prints and not final:
            self._decide(prints)
        elif prints:
            for t, _ in prints:
                if t is not None:
                    t.state = "waiting"

    def _transient(self, t: Tracked | None, name: str, exc: BaseException) -> None:
        self.counts["errors"] += 1
        if isinstance(exc, FileNotFoundError) and not (self.root / name).exists():
            self.tracked.pop(name, None)
            self.emit("vanished", printable(name), f"{printable(name)}: gone before it could be taken (moved or "
                                                   f"deleted, or taken by another watcher)")
            return
        if t is None:
            return
        t.attempts += 1
        delay = min(300.0, 5.0 * 2 ** (t.attempts - 1))
        t.state, t.due = "waiting", time.monotonic() + delay
        self.emit("error", printable(name), f"{printable(name)}: {type(exc).__name__}: {exc}; trying again in "
                                            f"{delay:g} s")

    # ------------------------------------------------------------ stage 2: decide and claim (main thread)
    def _decide(self, prints: list[tuple[Tracked | None, Fingerprint]]) -> None:
        actions: list[tuple[str, Tracked | None, Fingerprint, dict[str, Any]]] = []
        try:
            with self.ledger.transaction() as tx:
                recs = tx.plugin_table(INGESTS).all()
                by_path: dict[str, list[dict[str, Any]]] = {}
                by_hash: dict[str, list[dict[str, Any]]] = {}
                for rec in recs.values():
                    by_path.setdefault(rec.get("path"), []).append(rec)
                    by_hash.setdefault(rec.get("hash"), []).append(rec)
                table = tx.plugin_table(INGESTS)
                for t, fp in prints:
                    if fp.problems:
                        actions.append(("reject", t, fp, {"lines": fp.problems}))
                        continue
                    action, info = self._action(fp, recs.get(fp.key), by_path.get(fp.path, []),
                                                by_hash.get(fp.hash, []))
                    if action == "claim":
                        dest = self._plan_dest(fp)
                        info["dest"] = str(dest)
                        table.put(fp.key, {
                            "path": fp.path, "name": fp.name, "hash": fp.hash, "state": "claimed",
                            "owner": self.me, "dest": str(dest), "claimed": api.now(), "sig": fp.sig_digest,
                            "files": fp.files, "bytes": fp.bytes, "attempts": 0,
                        })
                    elif action == "changed-in-place":
                        table.put(fp.key, {
                            "path": fp.path, "name": fp.name, "hash": fp.hash, "state": "changed",
                            "dest": fp.path, "reported": api.now(), "sig": fp.sig_digest,
                            "ingested_as": info["previous"].get("prompt_id"),
                        })
                    actions.append((action, t, fp, info))
        except Exception as exc:
            for t, fp in prints:
                self._transient(t, fp.name, exc)
            return
        for action, t, fp, info in actions:
            try:
                self._act(action, t, fp, info)
            except Exception as exc:
                self._transient(t, fp.name, exc)

    def _action(self, fp: Fingerprint, rec: dict[str, Any] | None, same_path: list[dict[str, Any]],
                same_hash: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        if rec is not None:
            state = rec.get("state")
            if state == "ingested":
                if rec.get("dest") == fp.path:
                    return "done", {"rec": rec}
                if not os.path.exists(rec.get("dest") or ""):
                    return "finish-move", {"rec": rec}
                return "duplicate", {"rec": rec}
            if state == "changed":
                return "quiet", {"rec": rec}
            if state == "claimed" and rec.get("owner") and not api.owner_is_me(rec["owner"]) \
                    and api.owner_alive(rec["owner"]):
                return "busy", {"rec": rec}
        earlier = sorted((r for r in same_path if r.get("state") == "ingested" and r.get("hash") != fp.hash),
                         key=lambda r: r.get("ingested") or "")
        if earlier:
            previous = earlier[-1]
            if previous.get("dest") == fp.path:
                return "changed-in-place", {"previous": previous}
            return "changed", {"previous": previous}
        twins = [r for r in same_hash if r.get("state") == "ingested" and r.get("path") != fp.path]
        return "claim", {"twin": twins[-1] if twins else None}

    def _plan_dest(self, fp: Fingerprint) -> Path:
        if self.after == "mark":
            return Path(fp.path)
        return self._unique(self.processed, fp.name)

    def _unique(self, parent: Path, name: str) -> Path:
        candidate, n = parent / name, 1
        while os.path.lexists(candidate) or str(candidate) in self._planned:
            n += 1
            candidate = parent / f"{name}.{n}"
        self._planned.add(str(candidate))
        return candidate

    def _act(self, action: str, t: Tracked | None, fp: Fingerprint, info: dict[str, Any]) -> None:
        name = fp.name
        if action == "reject":
            self._reject(fp, fp.folder, info["lines"])
        elif action == "claim":
            dest = Path(info["dest"])
            if dest != fp.folder:
                self.processed.mkdir(parents=True, exist_ok=True)
                os.rename(fp.folder, dest)
                self._planned.discard(str(dest))
            if info.get("twin"):
                twin = info["twin"]
                self.emit("note", name, f"{name}: same content as {printable(twin.get('name') or '?')}, ingested "
                                        f"{(twin.get('ingested') or '')[:19]} as {twin.get('prompt_id')}; queuing "
                                        f"it again under this name")
            self._submit_build(fp, dest, 0)
        elif action == "done":
            rec = info["rec"]
            if not (fp.folder / INGESTED_FILE).exists():
                self._write_marker(fp.folder, rec.get("prompt_id"), rec.get("runs") or [], rec, fp.path)
            self._finish(t, fp, in_place=True)
        elif action == "quiet":
            self._finish(t, fp, in_place=True)
        elif action == "finish-move":
            rec = info["rec"]
            dest = Path(rec["dest"])
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(fp.folder, dest)
            self._write_marker(dest, rec.get("prompt_id"), rec.get("runs") or [], rec, fp.path)
            self.emit("recovered", name, f"{name}: already queued as {rec.get('prompt_id')} "
                                         f"({len(rec.get('runs') or [])} run(s)); finished moving it to "
                                         f"{self._rel(dest)}", prompt=rec.get("prompt_id"))
            self._finish(t, fp, in_place=False)
        elif action == "duplicate":
            rec = info["rec"]
            self.counts["duplicate"] += 1
            self._reject(fp, fp.folder, [f"identical to {name}, ingested {(rec.get('ingested') or '')[:19]} as "
                                         f"prompt {rec.get('prompt_id')} (now in {self._rel(Path(rec['dest']))}); "
                                         f"not queued again"], why="duplicate")
        elif action == "changed":
            prev = info["previous"]
            self.counts["changed"] += 1
            self._reject(fp, fp.folder, [
                f"a folder named {name} was ingested {(prev.get('ingested') or '')[:19]} as prompt "
                f"{prev.get('prompt_id')} with different content; it is not queued again. To queue this "
                f"content as new work, rename the folder (e.g. {name}-v2) and drop it again"], why="changed")
        elif action == "changed-in-place":
            prev = info["previous"]
            self.counts["changed"] += 1
            self.emit("changed", name, f"{name}: changed after it was ingested as {prev.get('prompt_id')}; "
                                       f"not queued again (copy it to a new folder to queue the new content)",
                      prompt=prev.get("prompt_id"))
            self._finish(t, fp, in_place=True)
        elif action == "busy":
            if t is not None:
                t.state, t.due = "waiting", time.monotonic() + max(self.settle, 1.0)  # another watcher has it

    def _finish(self, t: Tracked | None, fp: Fingerprint, *, in_place: bool) -> None:
        if t is None:
            return
        if in_place and os.path.isdir(fp.folder):
            try:
                t.done_sig = walk(fp.folder).sig
            except OSError:
                t.done_sig = fp.sig
            t.state, t.due, t.attempts = "done", None, 0
        else:
            self.tracked.pop(t.name, None)

    # ------------------------------------------------------------ stage 3: build (pool)
    def _submit_build(self, fp: Fingerprint, dest: Path, attempts: int) -> None:
        assert self._pool is not None
        fut = self._pool.submit(self._build, fp, dest)
        self._futures[fut] = ("build", fp.name)
        self._building[fut] = (fp, dest, attempts)
        fut.add_done_callback(lambda f: self._wake.set())

    def _build(self, fp: Fingerprint, dest: Path) -> Built | Rejected:
        from cosmoskit.api import Engine
        from cosmoskit.api import new_prompt

        try:
            side = sidecar.read(dest)
        except sidecar.SidecarError as exc:
            return Rejected(fp, dest, [str(exc)])
        text = side.text or self.default_text
        if not text:
            return Rejected(fp, dest, ["no prompt text: add cosmos.yaml (prompt: …) or prompt.txt to the folder, "
                                       "or set watch.prompt in cosmoskit.yaml"])
        try:
            name = side.name or sidecar.check_name(fp.name, "folder name")
        except sidecar.SidecarError as exc:
            return Rejected(fp, dest, [str(exc)])
        try:
            results = prepare.prepare(dest, fps=side.fps, default_fps=self.default_fps, single=True,
                                      sidecar_fps=False, verify=False)
        except prepare.PrepareError as exc:
            return Rejected(fp, dest, exc.lines())
        except CosmoskitError as exc:
            return Rejected(fp, dest, [str(exc)])
        notes = [n for r in results for n in r.notes]
        try:
            doc = new_prompt(text, dest, name=name, negative=side.negative, extra={
                "source": {"kind": "drop", "folder": fp.path, "hash": fp.hash, "sidecar": side.files}})
        except CosmoskitError as exc:
            return Rejected(fp, dest, [str(exc)])
        if results and doc["frames"] != results[0].frames:
            return Rejected(fp, dest, [f"{Path(doc['inputs']['rgb']['path']).name}: {doc['frames']} frames, but "
                                       f"{results[0].frames} frames were encoded"])
        doc["id"] = api.new_id("ps")
        engine = Engine(self.settings, self.ledger)
        runs: list[dict[str, Any]] = []
        where = side.files[0] if side.files and side.files[0] != "prompt.txt" else "transfer defaults"
        for i, run in enumerate(side.runs, 1):
            params = {**side.params, **{k: v for k, v in run.items() if k != "priority"}}
            priority = run.get("priority", side.priority if side.priority is not None else self.default_priority)
            try:
                runs += engine.new_runs("transfer", [doc["id"]], params, priority=priority,
                                        extra={"source": "watch", "drop_folder": fp.name},
                                        prompts={doc["id"]: doc})
            except CosmoskitError as exc:
                label = f"{where}: weights #{i}" if len(side.runs) > 1 else where
                return Rejected(fp, dest, [f"{label}: {exc}"])
        return Built(fp, dest, doc, runs, side.name is not None, notes)

    def _build_failed(self, fp: Fingerprint, dest: Path, exc: BaseException, attempts: int) -> None:
        self.counts["errors"] += 1
        attempts += 1
        if isinstance(exc, FileNotFoundError) and not dest.exists():
            self.emit("vanished", fp.name, f"{fp.name}: removed while it was being prepared")
            self._records.append((fp.key, {"state": "vanished"}))
            self.tracked.pop(fp.name, None)
            return
        if attempts >= MAX_ATTEMPTS:
            self._reject(fp, dest, [f"could not be ingested after {attempts} attempts: {type(exc).__name__}: {exc}"],
                         why="error")
            return
        delay = 5.0 * 2 ** (attempts - 1)
        self.emit("error", fp.name, f"{fp.name}: {type(exc).__name__}: {exc}; trying again in {delay:g} s")
        self._retry.append((time.monotonic() + delay, fp, dest))
        self._retry_attempts[fp.key] = attempts

    # ------------------------------------------------------------ stage 4: commit (main thread)
    def _flush(self) -> None:
        now = time.monotonic()
        due = [r for r in self._retry if r[0] <= now]
        self._retry = [r for r in self._retry if r[0] > now]
        for _, item, dest in due:
            if isinstance(item, Built):
                self._built.append(item)
            elif dest is not None:
                self._submit_build(item, dest, self._retry_attempts.get(item.key, 1))
        if self._built:
            self._commit(self._built)
            self._built = []
        if self._records:
            records, self._records = self._records, []
            try:
                with self.ledger.transaction() as tx:
                    table = tx.plugin_table(INGESTS)
                    for key, changes in records:
                        table.put(key, {**(table.get(key) or {}), **changes})
            except Exception as exc:
                self.emit("error", None, f"could not record {len(records)} rejection(s) in the ledger: {exc}")

    def _commit(self, built: list[Built]) -> None:
        committed: list[Built] = []
        lost: list[tuple[Built, str]] = []
        try:
            with self.ledger.transaction() as tx:
                recs = tx.plugin_table(INGESTS).all()
                table = tx.plugin_table(INGESTS)
                taken = {p.get("name") for p in tx.prompts()}
                stamp = api.now()
                for b in built:
                    rec = recs.get(b.fp.key)
                    if rec is None or rec.get("state") != "claimed":
                        lost.append((b, f"its ingest record is {rec.get('state') if rec else 'missing'}"))
                        continue
                    if rec.get("owner") and not api.owner_is_me(rec["owner"]) and api.owner_alive(rec["owner"]):
                        lost.append((b, "another watcher claimed it"))
                        continue
                    if not b.named_by_sidecar:
                        b.prompt["name"] = self._unique_name(b.prompt["name"], taken)
                    taken.add(b.prompt["name"])
                    tx.add_prompt(b.prompt)
                    tx.add_runs(b.runs)
                    table.put(b.fp.key, {**rec, "state": "ingested", "prompt_id": b.prompt["id"],
                                           "runs": [r["id"] for r in b.runs], "dest": str(b.dest),
                                           "ingested": stamp, "owner": None})
                    committed.append(b)
        except Exception as exc:
            self.counts["errors"] += 1
            for b in built:
                b.attempts += 1
            keep = [b for b in built if b.attempts < MAX_ATTEMPTS + 2]
            self.emit("error", None, f"could not write {len(built)} ingest(s) to the ledger ({exc}); trying again")
            for b in keep:
                self._retry.append((time.monotonic() + 2.0 * b.attempts, b, None))
            return
        for b, why in lost:
            self.emit("skipped", b.fp.name, f"{b.fp.name}: not queued, {why}")
        for b in committed:
            self._after_commit(b)

    @staticmethod
    def _unique_name(name: str, taken: set[str]) -> str:
        candidate, n = name, 1
        while candidate in taken:
            n += 1
            candidate = f"{name}-{n}"
        return candidate

    def _after_commit(self, b: Built) -> None:
        runs = b.runs
        self.counts["queued"] += 1
        self.counts["runs"] += len(runs)
        try:
            self._write_marker(b.dest, b.prompt["id"], [r["id"] for r in runs], {"hash": b.fp.hash}, b.fp.path,
                               runs=runs, prompt=b.prompt)
            stale = b.dest / REJECTED_FILE
            if stale.exists():
                stale.unlink()
        except OSError as exc:
            self.emit("error", b.fp.name, f"{b.fp.name}: queued, but the INGESTED.txt marker could not be written "
                                          f"({exc})")
        weights = "; ".join(",".join(f"{k}={v:g}" for k, v in r["params"]["weights"].items()) for r in runs)
        where = "marked in place" if b.dest == Path(b.fp.path) else f"moved to {self._rel(b.dest)}"
        note = f" [{'; '.join(b.notes)}]" if b.notes else ""
        self.emit("queued", b.fp.name, f"{b.fp.name}: queued {len(runs)} run(s) of prompt {b.prompt['id']} "
                                       f"{b.prompt['name']!r} ({weights}); {where}{note}",
                  prompt=b.prompt["id"], runs=[r["id"] for r in runs], dest=str(b.dest), notes=b.notes)
        t = self.tracked.get(b.fp.name) if os.path.dirname(b.fp.path) == str(self.root) else None
        if t is not None and t.path == Path(b.fp.path):
            self._finish(t, Fingerprint(b.fp.name, b.fp.path, b.dest, b.fp.hash, b.fp.sig_digest, b.fp.sig, 0, 0),
                         in_place=b.dest == Path(b.fp.path))

    def _write_marker(self, folder: Path, prompt_id: str | None, run_ids: list[str], rec: dict[str, Any],
                      dropped: str, *, runs: list[dict[str, Any]] | None = None,
                      prompt: dict[str, Any] | None = None) -> None:
        lines = [f"Ingested by cosmoskit watch on {api.now()[:19].replace('T', ' ')} UTC.",
                 f"prompt: {prompt_id}" + (f" ({prompt['name']})" if prompt else ""),
                 f"runs: {', '.join(run_ids) or '-'}"]
        for r in runs or []:
            w = ",".join(f"{k}={v:g}" for k, v in r["params"]["weights"].items())
            lines.append(f"  {r['id']}: weights {w}, priority {r['priority']}")
        lines += [f"dropped as: {dropped}", f"content sha256: {rec.get('hash')}",
                  "Changing this folder does not queue it again; copy it to a new folder to queue new work."]
        tmp = folder / f"{layout.OWN_PREFIX}-{INGESTED_FILE}.tmp"
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="replace")
        os.replace(tmp, folder / INGESTED_FILE)

    # ------------------------------------------------------------ rejecting
    def _reject(self, fp: Fingerprint, folder: Path, lines: list[str], why: str = "input") -> None:
        name = fp.name
        if why in ("input", "error"):
            self.counts["rejected"] += 1
        dest = self._unique(self.rejected, name)
        self._planned.discard(str(dest))
        try:
            if not folder.is_symlink():
                text = [f"Rejected by cosmoskit watch on {api.now()[:19].replace('T', ' ')} UTC "
                        f"(dropped as {fp.path}):", *lines, "",
                        "Fix the problems and drop the folder into the drop folder again."]
                (folder / REJECTED_FILE).write_text("\n".join(text) + "\n", encoding="utf-8", errors="replace")
            self.rejected.mkdir(parents=True, exist_ok=True)
            os.rename(folder, dest)
        except FileNotFoundError:
            self.emit("vanished", name, f"{name}: removed before it could be rejected")
            self.tracked.pop(name, None)
            return
        except OSError as exc:
            self.emit("error", name, f"{name}: rejected ({lines[0]}) but could not be moved to rejected/ ({exc})")
            t = self.tracked.get(name)
            if t is not None:
                self._finish(t, fp, in_place=True)
            return
        self._records.append((fp.key, {"path": fp.path, "name": name, "hash": fp.hash, "state": "rejected",
                                       "why": why, "reasons": lines[:50], "dest": str(dest), "owner": None,
                                       "rejected": api.now()}))
        more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
        kind = {"duplicate": "duplicate", "changed": "changed"}.get(why, "rejected")
        self.emit(kind, name, f"{name}: {lines[0]}{more} -> {self._rel(dest)}/{REJECTED_FILE}", reasons=lines,
                  dest=str(dest))
        t = self.tracked.get(name)
        if t is not None and t.path == Path(fp.path):
            self.tracked.pop(name, None)

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    # ------------------------------------------------------------ recovery
    def _recover(self) -> None:
        """Claims left by a watcher that died between claiming and committing: resume them."""
        try:
            with self.ledger.read() as tx:
                claims = [dict(r, _key=k) for k, r in tx.plugin_table(INGESTS).all().items() if r.get("state") == "claimed"]
        except Exception as exc:
            self.emit("error", None, f"cannot read the ingest table ({exc})")
            return
        for rec in claims:
            if rec.get("owner") and not api.owner_is_me(rec["owner"]) and api.owner_alive(rec["owner"]):
                continue
            path, dest = rec.get("path") or "", Path(rec.get("dest") or "")
            if os.path.isdir(path):
                continue  # still where it was dropped: the catch-up scan takes it again
            if not dest.is_dir():
                self._records.append((rec["_key"], {"state": "vanished"}))
                self.emit("vanished", rec.get("name"), f"{rec.get('name')}: claimed by a watcher that stopped, "
                                                       f"and no longer on disk")
                continue
            fp = Fingerprint(rec.get("name") or dest.name, path, dest, rec["hash"], rec.get("sig") or "", (),
                             rec.get("files") or 0, rec.get("bytes") or 0)
            self.emit("resume", fp.name, f"{fp.name}: resuming an ingest a stopped watcher had begun "
                                         f"({self._rel(dest)})")
            self._submit_build(fp, dest, 0)
