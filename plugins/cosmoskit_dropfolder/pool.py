"""The watcher's worker threads: hashing a settled folder and building a claimed one.

Only the main thread submits and collects, so every decision and ledger write stays on it; a
finished job wakes it.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosmoskit_dropfolder.build import Built, Rejected
from cosmoskit_dropfolder.contents import Fingerprint, Walk, fingerprint


@dataclass(frozen=True)
class Hashing:
    name: str          # the tracked folder's name


@dataclass(frozen=True)
class Building:
    fp: Fingerprint
    dest: Path
    attempts: int      # failed builds before this one


@dataclass(frozen=True)
class Finished:
    job: Hashing | Building
    result: Any = None                  # Hashing: a Fingerprint; Building: Built | Rejected
    error: BaseException | None = None
    cancelled: bool = False             # never started (the watcher is stopping)


class Pool:
    def __init__(self, jobs: int, wake: threading.Event,
                 build: Callable[[Fingerprint, Path], Built | Rejected]) -> None:
        self._executor = ThreadPoolExecutor(max(1, jobs), thread_name_prefix="cosmoskit-watch")
        self._futures: dict[Future, Hashing | Building] = {}
        self._wake = wake
        self._build = build

    def __bool__(self) -> bool:
        return bool(self._futures)

    def hash(self, name: str, path: Path, w: Walk | None) -> None:
        self._submit(Hashing(name), fingerprint, name, path, w)

    def build(self, fp: Fingerprint, dest: Path, attempts: int) -> None:
        self._submit(Building(fp, dest, attempts), self._build, fp, dest)

    def _submit(self, job: Hashing | Building, fn: Callable[..., Any], *args: Any) -> None:
        fut = self._executor.submit(fn, *args)
        self._futures[fut] = job
        fut.add_done_callback(lambda f: self._wake.set())

    def finished(self) -> list[Finished]:
        out = []
        for fut in [f for f in self._futures if f.done()]:
            job = self._futures.pop(fut)
            if fut.cancelled():
                out.append(Finished(job, cancelled=True))
            elif fut.exception() is not None:
                out.append(Finished(job, error=fut.exception()))
            else:
                out.append(Finished(job, fut.result()))
        return out

    def stop(self) -> None:
        """Start nothing new and wait for what runs."""
        for fut in list(self._futures):
            fut.cancel()
        self._executor.shutdown(wait=True)
