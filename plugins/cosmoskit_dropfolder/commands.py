"""``cosmoskit prepare`` and ``cosmoskit watch`` (heavy imports stay inside the functions)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer


def _stamp() -> str:
    from datetime import datetime

    return f"{datetime.now():%H:%M:%S}"


def register(app: typer.Typer) -> None:
    @app.command("prepare")
    def prepare_cmd(
        folder: Path = typer.Argument(..., help="Folder of frame sequences (color.0001.png …, rgb_0001.png …, "
                                                "rgb/ depth/ seg/) or videos."),
        name: Optional[str] = typer.Option(None, "--name",
                                           help="The shot to prepare when the folder holds several "
                                                "(shotA_color.0001.png, shotB_color.0001.png …); "
                                                "each shot otherwise goes to its own subfolder."),
        fps: Optional[float] = typer.Option(None, "--fps",
                                            help="Frame rate of the sequences (else fps: in cosmos.yaml, else 24)."),
        force: bool = typer.Option(False, "--force", help="Encode again even when the videos are up to date."),
        depth: Optional[str] = typer.Option(None, "--depth", metavar="distance|inverse",
                                            help="What EXR and 16-bit PNG depth holds: distance (larger = farther, "
                                                 "a Z pass; the default) or inverse (larger = nearer). "
                                                 "Else depth: in cosmos.yaml."),
        json_: bool = typer.Option(False, "--json", help="Output as JSON."),
    ) -> None:
        """Check frame sequences and encode them into color.mp4 / depth.mp4 / seg.mp4 for a prompt."""
        import sys

        from cosmoskit import api
        from cosmoskit.api import CosmoskitError
        from cosmoskit_dropfolder import prepare

        def log(text: str) -> None:
            if not json_:
                sys.stderr.write(f"{text}\n")

        try:
            results = prepare.prepare(folder, fps=fps, shot=name, force=force, log=log, depth=depth)
        except prepare.PrepareError as exc:
            if json_:
                api.emit_json({"folder": str(exc.folder), "ok": False, "problems": exc.lines(str(exc.folder))})
                raise typer.Exit(1) from None
            for line in exc.lines(str(exc.folder)):
                sys.stderr.write(f"{line}\n")
            n = len(exc.problems)
            raise CosmoskitError(
                f"{exc.folder}: {n} problem{'s' if n != 1 else ''} found; nothing was encoded"
            ) from None
        if json_:
            api.emit_json({"ok": True, "results": [r.as_dict() for r in results]})
            return
        for r in results:
            shot = f" shot {r.shot}" if r.shot and len(results) > 1 else ""
            api.say(f"[bold]{api.escape(str(r.folder))}[/bold]{api.escape(shot)}: {r.frames} frames, "
                       f"{r.width}x{r.height}, {r.fps:g} fps ({r.seconds:.1f} s)")
            api.table(None, ("video", "done", "from", "encoding"),
                         ((Path(v["path"]).name, v["action"], api.escape(v["source"]), v.get("encoding", ""))
                          for _, v in sorted(r.videos.items(),
                                             key=lambda kv: ("rgb", "depth", "seg", "edge").index(kv[0])
                                             if kv[0] in ("rgb", "depth", "seg", "edge") else 9)))
            for note in r.notes:
                api.say(f"[yellow]note:[/yellow] {api.escape(note)}")
        if len(results) == 1:
            api.say(f"Next: cosmoskit prompt create \"…\" {api.escape(str(results[0].folder))}")

    @app.command("watch")
    def watch_cmd(
        folder: Optional[Path] = typer.Argument(None, help="Drop folder (default: watch.folder in cosmoskit.yaml)."),
        work: bool = typer.Option(False, "--work",
                                  help="Also run the worker in this process: dropped folders become finished runs."),
        once: bool = typer.Option(False, "--once",
                                  help="Take what is in the drop folder (waiting for it to settle), then exit."),
        json_: bool = typer.Option(False, "--json", help="One JSON object per event on stdout instead of log lines."),
    ) -> None:
        """Watch the drop folder: each complete subfolder becomes a prompt and queued runs, exactly once."""
        import signal
        import sys
        import threading

        import orjson

        from cosmoskit import api
        from cosmoskit.api import Ledger
        from cosmoskit_dropfolder.watcher import DropWatcher

        lock = threading.Lock()

        def emit(event: dict[str, Any]) -> None:
            with lock:
                if json_:
                    sys.stdout.buffer.write(orjson.dumps(event) + b"\n")
                    sys.stdout.flush()
                else:
                    sys.stderr.write(f"{_stamp()} {event['event']:<9} {event['message']}\n")
                    sys.stderr.flush()

        def worker_log(text: str) -> None:
            emit({"event": "worker", "folder": None, "message": text})

        settings = api.settings()
        stop = threading.Event()
        watcher = DropWatcher(settings, api.ledger(), folder=folder, emit=emit)

        from cosmoskit.api import Worker

        worker_thread = None
        if work and not once:
            def serve() -> None:
                try:
                    Worker(settings, Ledger(settings.home), log=worker_log).run(stop=stop)
                except Exception as exc:  # the watcher goes on; the queue waits for a worker
                    worker_log(f"stopped on an error: {type(exc).__name__}: {exc}")

            worker_thread = threading.Thread(target=serve, name="cosmoskit-worker", daemon=True)
            worker_thread.start()

        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        try:
            counts = watcher.run(stop, once=once)
        finally:
            stop.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if worker_thread is not None:
                worker_thread.join(timeout=30)
        ran = None
        if work and once:
            ran = Worker(settings, Ledger(settings.home), log=worker_log)
            ran.run(once=True)
        emit({"event": "stopped", "folder": None, "counts": counts,
              "message": f"stopped: {counts['queued']} folder(s) queued as {counts['runs']} run(s), "
                         f"{counts['rejected']} rejected, {counts['changed']} changed, "
                         f"{counts['duplicate']} duplicate(s), {counts['errors']} error(s)"})
        if once:
            # a script running `watch --once` learns from the exit code that something needs a look
            problem = api.not_completed(ran.outcomes()) if ran is not None else None
            if problem is not None:
                raise problem
            if counts["rejected"] or counts["errors"]:
                raise api.CosmoskitError(
                    f"{counts['rejected']} folder(s) rejected, {counts['errors']} error(s)",
                    hint="each rejected folder's REJECTED.txt says why", exit_code=3)
