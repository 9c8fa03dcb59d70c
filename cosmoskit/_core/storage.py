"""Crash-safe multi-file JSON storage under one cross-process lock.

TinyDB's own JSONStorage rewrites files in place and keeps a handle open, so
several processes corrupt it (docs/dependencies.md, "TinyDB across processes").  Here every
file is read fresh inside the lock, and a commit writes each changed file to
a temporary file, fsyncs it, records the set in a journal, then renames the
files into place.  A crash at any instant leaves either the old or the new
set of files: the next transaction rolls a complete journal forward and
throws away temporary files that never made it into one.

Before a file is replaced, its previous version is kept as ``<file>.bak``.
A damaged file is never written over: loading it raises an error that names
it and says how to restore the backup.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from cosmoskit._core.errors import CosmoskitError, from_os_error
from cosmoskit._core.lock import LedgerLock

JOURNAL = "journal.json"
TMP_SUFFIX = ".tmp-commit"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, payload: bytes) -> None:
    """Write a single file atomically (temporary file, fsync, rename, fsync folder)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    with open(tmp, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def damaged(path: Path, problem: str) -> CosmoskitError:
    backup = path.with_name(path.name + ".bak")
    hint = (
        f"the previous version is in {backup.name}; `cosmoskit ledger restore {path.name}` puts it back "
        f"and keeps the damaged file aside"
        if backup.exists()
        else "no backup exists; move the file away to start it empty, or repair it by hand"
    )
    return CosmoskitError(f"ledger file {path} is damaged: {problem}", hint=hint)


def load_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    if not raw.strip():
        raise damaged(path, "the file is empty")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise damaged(path, f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise damaged(path, f"expected a JSON object of tables, found {type(data).__name__}")
    for name, table in data.items():
        if not isinstance(table, dict) or not all(isinstance(doc, dict) for doc in table.values()):
            raise damaged(path, f"table {name!r} is not a JSON object of records")
    return data


class FileState:
    """One JSON file as seen inside a transaction: read at most once, written at most once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] | None = None
        self.loaded = False
        self.dirty = False

    def read(self) -> dict[str, Any] | None:
        if not self.loaded:
            self.data = load_json(self.path)
            self.loaded = True
        return self.data

    def write(self, data: dict[str, Any]) -> None:
        self.data = data
        self.loaded = True
        self.dirty = True


class Store:
    """A folder of JSON files guarded by one lock file."""

    def __init__(self, root: Path, lock_timeout: float = 120.0) -> None:
        self.root = root
        self.lock_timeout = lock_timeout
        self._lock: LedgerLock | None = None

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            self._lock = LedgerLock(self.root, self.lock_timeout)
        self._lock.acquire()
        try:
            if self._lock.depth == 1:
                self.recover()
            yield
        finally:
            self._lock.release()

    def recover(self) -> None:
        """Finish a commit a crash interrupted, or discard one that never reached its journal."""
        journal = self.root / JOURNAL
        if journal.exists():
            try:
                entries = orjson.loads(journal.read_bytes())
            except orjson.JSONDecodeError:
                # The journal is written atomically, so a damaged one is not ours to guess at.
                entries = None
            if entries is None:
                raise damaged(journal, "the commit journal is unreadable")
            for tmp_name, dest_name in entries:
                self._install(self.root / tmp_name, self.root / dest_name)
            fsync_dir(self.root)
            journal.unlink()
        for stray in self.root.rglob(f"*{TMP_SUFFIX}"):
            stray.unlink(missing_ok=True)

    @staticmethod
    def _install(tmp: Path, dest: Path) -> None:
        # Idempotent: only acts while the temporary file still exists.
        if not tmp.exists():
            return
        if dest.exists():
            bak_tmp = dest.with_name(dest.name + ".bak" + TMP_SUFFIX)
            bak_tmp.unlink(missing_ok=True)
            os.link(dest, bak_tmp)
            os.replace(bak_tmp, dest.with_name(dest.name + ".bak"))
        os.replace(tmp, dest)

    def commit(self, files: list[FileState]) -> None:
        """Write every dirty file, all or nothing."""
        dirty = [f for f in files if f.dirty]
        if not dirty:
            return
        if self._lock is not None:
            self._lock.check()
        entries = []
        for state in dirty:
            state.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = state.path.with_name(f".{state.path.name}{TMP_SUFFIX}")
            try:
                payload = orjson.dumps(state.data or {})
            except orjson.JSONEncodeError as exc:  # checked where values come in; this is the last guard
                raise CosmoskitError(
                    f"cannot store a value in {state.path.name}: {exc}",
                    hint="a number out of range or text that is not valid Unicode; nothing was written",
                ) from exc
            try:
                with open(tmp, "wb") as fh:
                    fh.write(payload)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:  # a full disk: nothing was installed; the stray temporary goes
                tmp.unlink(missing_ok=True)
                raise from_os_error(exc, state.path) from exc
            entries.append((str(tmp.relative_to(self.root)), str(state.path.relative_to(self.root))))
        if len(dirty) == 1:
            # One file needs no journal: the rename alone is atomic.
            self._install(self.root / entries[0][0], dirty[0].path)
            fsync_dir(dirty[0].path.parent)
        else:
            write_atomic(self.root / JOURNAL, orjson.dumps(entries))
            for (tmp_name, _), state in zip(entries, dirty, strict=False):
                self._install(self.root / tmp_name, state.path)
            for folder in {s.path.parent for s in dirty}:
                fsync_dir(folder)
            (self.root / JOURNAL).unlink()
            fsync_dir(self.root)
        for state in dirty:
            state.dirty = False

    def path_of(self, name: str) -> Path:
        """A ledger file named as a user names it (``active.json``, ``history/2026-11.json``); nothing outside
        the ledger folder, and nothing that is not one of its JSON files."""
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()) or path == self.root.resolve():
            raise CosmoskitError(
                f"{name} is not a file of the ledger in {self.root}",
                hint="name it relative to that folder, e.g. active.json or history/2026-11.json",
            )
        if path.suffix != ".json" or path.name.startswith("."):
            raise CosmoskitError(f"{name} is not a ledger file (those end in .json)")
        return path

    def restore(self, name: str) -> tuple[Path, Path | None]:
        """Put ``<name>.bak`` back in place; keep the damaged file under a new, unused name.
        The caller holds the lock, so it can repair what depends on the file in the same breath."""
        with self.locked():
            path = self.path_of(name)
            backup = path.with_name(path.name + ".bak")
            if not backup.exists():
                raise CosmoskitError(f"no backup {backup} to restore")
            load_json(backup)  # refuse to restore a damaged backup
            kept = None
            if path.exists():
                stamp = time.strftime("%Y%m%dT%H%M%S")
                kept = path.with_name(f"{path.name}.damaged-{stamp}")
                n = 1
                while kept.exists():
                    n += 1
                    kept = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
                os.replace(path, kept)
            tmp = path.with_name(f".{path.name}{TMP_SUFFIX}")
            tmp.write_bytes(backup.read_bytes())
            os.replace(tmp, path)
            fsync_dir(path.parent)
            return path, kept
