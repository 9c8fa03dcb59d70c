"""Live progress of a batch: staging bytes, model load, chunk k of n per run, fetching."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any


class BatchDisplay:
    """Turns engine events into a rich progress display (or plain lines when not on a terminal)."""

    def __init__(self, runs: Sequence[Mapping[str, Any]], *, show_log: bool = False, quiet: bool = False) -> None:
        self.run_ids = [r["id"] for r in runs]
        self.show_log = show_log
        self.quiet = quiet
        self.live = sys.stderr.isatty() and not quiet
        self.progress: Any = None
        self.tasks: dict[str, Any] = {}
        self.current_line = -1

    def __enter__(self) -> BatchDisplay:
        if self.live:
            from rich.console import Console, Group
            from rich.live import Live
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            console = Console(stderr=True)
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=console,
            )
            # byte transfers get their own bars: size, speed and time left
            self.bytes = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=console,
            )
            self._live = Live(Group(self.bytes, self.progress), console=console, refresh_per_second=8)
            self._live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self._live.stop()

    def _plain(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def _task(self, key: str, description: str, total: float | None = None) -> Any:
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(description, total=total, detail="")
        return self.tasks[key]

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "log":
            if self.show_log:
                (self.progress.console.print if self.progress else self._plain)(data["line"])
            return
        if not self.live:
            if kind in ("waiting", "staging", "launched", "fetching", "finished", "timeout"):
                self._plain(f"[{kind}] " + " ".join(f"{k}={v}" for k, v in data.items() if k != "handle"))
            return
        p = self.progress
        if kind == "staging":
            self.batch = data["batch"]
            p.add_task(f"batch {data['batch']}: {data['runs']} run(s)", total=None, detail="staging")
        elif kind == "transfer":
            key = "transfer:" + data["label"]
            if key not in self.tasks:
                verb = "fetch" if data["label"] == "outputs" else "send"
                self.tasks[key] = self.bytes.add_task(f"  {verb} {data['label']}", total=data["total"] or None)
            self.bytes.update(self.tasks[key], completed=data["done"], total=data["total"] or None)
        elif kind == "launched":
            self._task("load", "  model load", None)
            p.update(self.tasks["load"], detail="loading")
        elif kind == "progress":
            if data.get("phase") == "loaded" and "load" in self.tasks:
                p.update(self.tasks["load"], total=1, completed=1, detail="loaded")
            elif data.get("phase") == "line":
                self.current_line += 1
            elif "line" in data:
                k = data["line"]
                rid = self.run_ids[k] if k < len(self.run_ids) else f"line {k}"
                t = self._task(f"run:{k}", f"  {rid}", data["chunks"])
                p.update(
                    t,
                    completed=data["chunk"] - 1,
                    total=data["chunks"],
                    detail=f"chunk {data['chunk']}/{data['chunks']}",
                )
                for j in range(k):
                    if f"run:{j}" in self.tasks:
                        task = self.tasks[f"run:{j}"]
                        p.update(task, completed=p.tasks[task].total, detail="done")
        elif kind == "fetching":
            for key, task in self.tasks.items():
                if key.startswith("run:"):
                    p.update(task, completed=p.tasks[task].total)
            self._task("fetch", "  fetching outputs", None)
        elif kind == "finished":
            if "fetch" in self.tasks:
                p.update(
                    self.tasks["fetch"], total=1, completed=1, detail=f"{data['completed']}/{data['runs']} completed"
                )
        elif kind == "waiting":
            p.console.print(f"[yellow]waiting for a free GPU slot: {data['reason']}[/yellow]")
        elif kind == "unreachable":
            p.console.print(f"[yellow]host unreachable, retrying: {data['error']}[/yellow]")
        elif kind == "timeout":
            p.console.print(f"[red]batch {data['batch']} hit timeouts.batch_seconds; stopping it[/red]")
