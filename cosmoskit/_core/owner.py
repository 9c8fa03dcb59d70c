"""Which process is looking after a batch, and whether it is still alive."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from cosmoskit._core.records import Owner


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, kernel start time) of a process, or None if there is none.  The start time tells a
    recycled pid from the owner; the state tells a zombie (dead, not yet reaped) from a live one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return fields[0].decode(), fields[19].decode()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    found = _stat(pid)
    return found[1] if found else None


def me() -> Owner:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "start": _start_time(pid)}


def alive(owner: Mapping[str, Any] | None) -> bool:
    if not owner:
        return False
    if owner.get("host") != socket.gethostname():
        # Another machine's process: we cannot see it, so assume it is alive.
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False
    found = _stat(pid)
    if found is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return owner.get("start") is None
    state, start = found
    if state in ("Z", "X"):
        return False  # killed, waiting to be reaped: it will never settle anything again
    return owner.get("start") in (None, start)


def is_me(owner: Mapping[str, Any] | None) -> bool:
    return owner is not None and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname()
