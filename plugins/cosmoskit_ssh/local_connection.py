"""The same interface as Connection, for when "the host" is this machine (a Slurm login node we run on)."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from cosmoskit_ssh.connection import Result

T = TypeVar("T")


class LocalConnection:
    reconnects = 0

    def __init__(self, name: str) -> None:
        self.name = name

    def retrying(self, fn: Callable[[], T], what: str, patience: float | None = None) -> T:
        return fn()

    def run(self, command: list[str] | str, *, stdin: bytes | None = None, timeout: float | None = 120,
            check: bool = True, what: str | None = None, patience: float | None = None) -> Result:
        args = command if isinstance(command, list) else ["bash", "-c", command]
        proc = subprocess.run(args, input=stdin or b"", capture_output=True, timeout=timeout)
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        return result.checked(self.name, what or "command") if check else result

    def stream(self, command: str, sink: Callable[[bytes], None], *, what: str) -> int:
        proc = subprocess.Popen(["bash", "-c", command], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        while data := proc.stdout.read(1 << 20):
            sink(data)
        return proc.wait()

    def send_file(self, local: Path, remote_path: str, offset: int, tick: Callable[[int], None]) -> tuple[int, int]:
        with open(local, "rb") as src, open(remote_path, "ab" if offset else "wb") as dst:
            src.seek(offset)
            sent = 0
            while block := src.read(1 << 20):
                dst.write(block)
                sent += len(block)
                tick(len(block))
        return sent, os.path.getsize(remote_path)

    def read_file(self, path: str, offset: int) -> bytes:
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                return fh.read()
        except FileNotFoundError:
            return b""

    def close(self) -> None:
        pass
