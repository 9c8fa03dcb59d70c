"""Live batches: each running batch's log, tailed off the request path, and the progress it tells.

One thread per active batch reads the batch log through its executor (``read_log``: a file here,
SFTP on an SSH host), keeps the last lines for pages that open the log, hands new lines to open
log streams, and turns lines into per-run progress with the operation's own ``progress()`` parser
(chunk k of n).  The Running page reads :meth:`ProgressBoard.view`; it never waits on a host.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from cosmoskit import api
from cosmoskit.api import Ledger, Settings
from cosmoskit_ui.hub import Hub
from cosmoskit_ui.snapshot import LedgerView

POLL_SECONDS = 0.4
KEEP_LINES = 2000
ACTIVE = ("staging", "running", "fetching")


@dataclass
class RunProgress:
    chunk: int = 0
    chunks: int = 0
    done: bool = False


@dataclass(frozen=True)
class LogState:
    """A batch's progress at one moment, for a page."""

    runs: dict[int, RunProgress]
    loaded: bool
    current: int
    error: str | None
    lines: int


@dataclass
class BatchLog:
    """One batch's tailed log and the progress parsed from it."""

    batch_id: str
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=KEEP_LINES))
    total_lines: int = 0  # lines seen since the start (an index for streams)
    runs: dict[int, RunProgress] = field(default_factory=dict)  # line in the batch -> progress
    loaded: bool = False
    current: int = -1
    error: str | None = None  # the host did not answer the last read
    finished: bool = False
    _subscribers: dict[asyncio.Queue[list[str] | None], asyncio.AbstractEventLoop] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, new: list[str], events: list[dict[str, Any]]) -> None:
        with self._lock:
            self.lines.extend(new)
            self.total_lines += len(new)
            for event in events:
                self._progress(event)
            targets = list(self._subscribers.items())
        for queue, loop in targets:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, new)
            except RuntimeError:
                pass

    def _progress(self, event: dict[str, Any]) -> None:
        if event.get("phase") == "loaded":
            self.loaded = True
        elif event.get("phase") == "line":
            self.current += 1
        elif "line" in event:
            k = int(event["line"])
            self.runs[k] = RunProgress(int(event.get("chunk", 0)), int(event.get("chunks", 0)))
            for j in range(k):  # the model works through lines in order
                earlier = self.runs.setdefault(j, RunProgress())
                earlier.done = True
            self.current = max(self.current, k)

    def close(self) -> None:
        with self._lock:
            self.finished = True
            targets = list(self._subscribers.items())
        for queue, loop in targets:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except RuntimeError:
                pass

    def snapshot(self) -> LogState:
        with self._lock:
            return LogState({k: RunProgress(v.chunk, v.chunks, v.done) for k, v in self.runs.items()},
                            self.loaded, self.current, self.error, self.total_lines)

    async def stream(self, tail: int = 400) -> AsyncIterator[bytes]:
        """The last ``tail`` lines, then every new line, as SSE ``lines`` messages; ``end`` when the batch is over."""
        queue: asyncio.Queue[list[str] | None] = asyncio.Queue()
        with self._lock:
            self._subscribers[queue] = asyncio.get_running_loop()
            first = list(self.lines)[-tail:]
            finished = self.finished
        try:
            yield b"retry: 1000\n" + _lines(first)
            if finished:
                yield b"event: end\ndata: {}\n\n"
                return
            while True:
                try:
                    new = await asyncio.wait_for(queue.get(), 15.0)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if new is None:
                    yield b"event: end\ndata: {}\n\n"
                    return
                batch = list(new)
                while not queue.empty():
                    more = queue.get_nowait()
                    if more is None:
                        yield _lines(batch) + b"event: end\ndata: {}\n\n"
                        return
                    batch += more
                yield _lines(batch)
        finally:
            with self._lock:
                self._subscribers.pop(queue, None)


def _lines(lines: list[str]) -> bytes:
    return b"event: lines\ndata: " + orjson.dumps(lines) + b"\n\n"


class ProgressBoard:
    """Starts a tailer for every active batch the ledger shows; pages read the results."""

    def __init__(self, settings: Settings, ledger: Ledger, view: LedgerView, hub: Hub) -> None:
        self.settings = settings
        self.ledger = ledger
        self.view = view
        self.hub = hub
        self.logs: dict[str, BatchLog] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self, stop: threading.Event) -> None:
        self._stop = stop
        threading.Thread(target=self._loop, args=(stop,), name="ui-progress", daemon=True).start()

    def get(self, batch_id: str) -> BatchLog | None:
        with self._lock:
            return self.logs.get(batch_id)

    def ensure(self, batch_id: str) -> BatchLog | None:
        """The batch's log, its tailer started now if the batch runs and the board has not got to it yet."""
        log = self.get(batch_id)
        if log is not None:
            return log
        with self.ledger.read() as tx:
            batch = tx.batch(batch_id)
        if batch is None or batch["state"] not in ("running", "fetching"):
            return None
        self._follow(batch["id"])
        return self.get(batch_id)

    def _follow(self, batch_id: str) -> None:
        with self._lock:
            if batch_id in self.logs:
                return
            log = self.logs[batch_id] = BatchLog(batch_id)
        threading.Thread(target=self._tail, args=(batch_id, log, self._stop), name=f"ui-tail-{batch_id}",
                         daemon=True).start()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(POLL_SECONDS):
            try:
                active = self.view.get().active_batches
            except Exception:  # a damaged ledger shows on the pages; the board tries again
                continue
            for batch in active:
                if batch["state"] in ("running", "fetching"):
                    self._follow(batch["id"])
            self._forget(time.monotonic())

    def _forget(self, now: float) -> None:
        """Keep finished batches' logs a while (a page may still show them), not forever."""
        with self._lock:
            if len(self.logs) > 200:
                for key in [k for k, v in self.logs.items() if v.finished][: len(self.logs) - 200]:
                    del self.logs[key]

    def _tail(self, batch_id: str, log: BatchLog, stop: threading.Event) -> None:
        engine = api.Engine(self.settings, self.ledger)
        offset, partial = 0, b""
        try:
            while not stop.is_set():
                with self.ledger.read() as tx:
                    batch = tx.batch(batch_id)
                if batch is None:
                    break
                over = batch["state"] not in ACTIVE
                try:
                    ex = engine.executor(batch["executor"])
                    op = engine.operation(batch["operation"])
                    data, offset = ex.read_log(batch.get("handle") or {}, offset)
                    log.error = None
                except api.CosmoskitError as exc:
                    data, log.error = b"", str(exc)
                except Exception as exc:  # a plugin's bug: shown, and the page goes on
                    data, log.error = b"", f"{type(exc).__name__}: {exc}"
                    op = None
                if data:
                    lines = (partial + data).split(b"\n")
                    partial = lines.pop()
                    text = [raw.decode("utf-8", "replace") for raw in lines]
                    events = [e for e in (op.progress(t) if op is not None else None for t in text) if e]
                    log.add(text, events)
                    if events:  # at most one message per poll and batch
                        self.hub.publish("progress")
                if over:
                    if partial:
                        log.add([partial.decode("utf-8", "replace")], [])
                    break
                stop.wait(POLL_SECONDS)
        finally:
            log.close()
            engine.close()
            self.hub.publish("progress")
