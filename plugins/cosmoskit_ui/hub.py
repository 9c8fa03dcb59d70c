"""Server-sent events: which things changed, told to every open page at once.

Threads (the ledger watcher, log tailers, the host monitor) ``publish`` a topic; each open
``/events`` stream has a queue on the event loop and writes one SSE message per change, so a
page refetches only what changed.  Messages carry version numbers: a page that reconnects after
a drop compares them with its own and refreshes at once if it missed something.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson

TOPICS = ("ledger", "plan", "progress", "hosts")
KEEPALIVE_SECONDS = 15.0
RETRY_MS = 1000  # how soon a browser reconnects after the stream drops
_DROP = ("", -1)


@dataclass
class Hub:
    versions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOPICS, 0))
    connects: int = 0  # streams opened since start: a reconnect counts again
    _subscribers: dict[asyncio.Queue[tuple[str, int]], asyncio.AbstractEventLoop] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, topic: str) -> None:
        """Called from any thread: ``topic`` changed."""
        with self._lock:
            self.versions[topic] += 1
            version = self.versions[topic]
            targets = list(self._subscribers.items())
        for queue, loop in targets:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (topic, version))
            except RuntimeError:  # that loop is closed: the stream is gone
                pass

    def drop_all(self) -> None:
        """Close every open stream (server shutdown; tests of a dropped stream)."""
        with self._lock:
            targets = list(self._subscribers.items())
        for queue, loop in targets:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, _DROP)
            except RuntimeError:
                pass

    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    async def stream(self) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        with self._lock:
            self._subscribers[queue] = asyncio.get_running_loop()
            self.connects += 1
            hello = {"versions": dict(self.versions), "connects": self.connects}
        try:
            yield f"retry: {RETRY_MS}\n".encode() + _message("hello", hello)
            while True:
                try:
                    topic, version = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if (topic, version) == _DROP:
                    return
                latest = {topic: version}
                while not queue.empty():  # a burst of changes is one message per topic
                    more = queue.get_nowait()
                    if more == _DROP:
                        return
                    latest[more[0]] = max(latest.get(more[0], 0), more[1])
                yield b"".join(_message(t, {"version": v}) for t, v in latest.items())
        finally:
            with self._lock:
                self._subscribers.pop(queue, None)


def _message(event: str, data: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
