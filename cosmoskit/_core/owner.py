"""Which process is looking after a batch, and whether it is still alive."""
from __future__ import annotations

import os
import socket
from typing import Any


def _start_time(pid: int) -> str | None:
    """Kernel start time of a process, so a recycled pid is not mistaken for the owner."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return None


def me() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "start": _start_time(pid)}


def alive(owner: dict[str, Any] | None) -> bool:
    if not owner:
        return False
    if owner.get("host") != socket.gethostname():
        # Another machine's process: we cannot see it, so assume it is alive.
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False
    start = _start_time(pid)
    if start is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return owner.get("start") is None
    return owner.get("start") in (None, start)


def is_me(owner: dict[str, Any] | None) -> bool:
    return bool(owner) and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname()
