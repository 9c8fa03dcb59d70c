"""Helpers for the benchmark scripts (they print figures; nothing here asserts timing)."""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def cosmoskit_exe() -> str:
    exe = Path(sys.executable).with_name("cosmoskit")
    return str(exe) if exe.exists() else (shutil.which("cosmoskit") or "cosmoskit")


def time_command(args: list[str], *, repeat: int = 7, env: dict[str, str] | None = None,
                 cwd: str | None = None) -> dict[str, float]:
    """Wall time of a whole command (start-up included), over several runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, env={**os.environ, **(env or {})}, cwd=cwd)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{args} failed: {proc.stderr.decode()[-500:]}")
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
