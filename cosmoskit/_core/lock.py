"""The ledger's one cross-process lock: ``flock`` on the ledger folder itself.

A lock *file* is not enough: ``flock`` locks an open file, not a name, so if someone
deletes or replaces ``ledger/.lock`` while a process holds it, the next process creates
a new file, locks that one, and two processes write the ledger at once (an outside probe
half-wrote a run that way).  The ledger folder cannot be removed without removing the
ledger, so cosmoskit locks the folder.  Where a filesystem refuses ``flock`` on a folder
(some network filesystems), it falls back to a lock file and checks, after taking it and
again before every commit, that the file it locked is still the one at that path: if
not, the transaction stops with one line and writes nothing.

The lock is exclusive between processes and between threads (each thread opens its own
descriptor), re-entrant within a thread, and released by the kernel if the process dies.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from pathlib import Path

from cosmoskit._core.errors import CosmoskitError

LOCK_FILE = ".lock"  # the fallback


class LedgerLock:
    def __init__(self, folder: Path, timeout: float) -> None:
        self.folder = folder
        self.timeout = timeout
        self._local = threading.local()  # fd, depth, whether it is the fallback file
        self._folder_locks: bool | None = None  # can this filesystem flock a folder? (learnt once)

    @property
    def depth(self) -> int:
        return int(getattr(self._local, "depth", 0))

    def acquire(self) -> None:
        if self.depth:
            self._local.depth += 1
            return
        deadline = time.monotonic() + self.timeout
        pause = 0.001
        while True:
            fd, is_file = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise CosmoskitError(
                        f"the ledger in {self.folder} stayed locked for {self.timeout:.0f} s",
                        hint="another cosmoskit process holds it; check `ps` for a stuck one",
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
                continue
            if is_file and not self._still_there(fd):
                os.close(fd)  # the file was replaced between our open and our lock: lock the new one
                continue
            self._local.fd, self._local.is_file, self._local.depth = fd, is_file, 1
            return

    def release(self) -> None:
        self._local.depth -= 1
        if self._local.depth == 0:
            os.close(self._local.fd)  # closing the descriptor drops the flock
            self._local.fd = None

    def check(self) -> None:
        """Before a commit: is the lock this thread holds still the ledger's lock?"""
        if getattr(self._local, "is_file", False) and not self._still_there(self._local.fd):
            raise CosmoskitError(
                f"the ledger's lock file {self.folder / LOCK_FILE} was removed or replaced while this process "
                "held it; nothing was written",
                hint="something is deleting files in the ledger folder; stop it and run the command again",
            )

    def _open(self) -> tuple[int, bool]:
        """A descriptor to lock: the folder's, unless this filesystem cannot lock a folder."""
        if self._folder_locks is not False:
            try:
                fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                self._folder_locks = False
            else:
                if self._folder_locks is None:
                    self._folder_locks = self._can_lock(fd)
                if self._folder_locks:
                    return fd, False
                os.close(fd)
        return self._open_file(), True

    @staticmethod
    def _can_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)  # held by someone: it works
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True

    def _open_file(self) -> int:
        return os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)

    def _still_there(self, fd: int) -> bool:
        try:
            here = os.stat(self.folder / LOCK_FILE)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (mine.st_ino, mine.st_dev) == (here.st_ino, here.st_dev)
