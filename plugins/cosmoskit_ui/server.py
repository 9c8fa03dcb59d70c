"""The server: the services behind the pages, the optional in-process worker, and uvicorn.

``serve()`` runs in the foreground until Ctrl-C (the command); ``start()``/``stop()`` run it on a
thread (tests and the benchmark drive the very same server that way).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from cosmoskit import api
from cosmoskit.api import Settings
from cosmoskit_ui.app import build
from cosmoskit_ui.context import UiContext
from cosmoskit_ui.hosts import HostMonitor
from cosmoskit_ui.hub import Hub
from cosmoskit_ui.planner import Planner
from cosmoskit_ui.progress import ProgressBoard
from cosmoskit_ui.render import environment
from cosmoskit_ui.security import Guard
from cosmoskit_ui.snapshot import LedgerView
from cosmoskit_ui.thumbs import Thumbs


class _Server(uvicorn.Server):
    """uvicorn, telling the app first when it starts to shut down: open event streams end at once instead of
    holding the graceful shutdown until its timeout."""

    def __init__(self, config: uvicorn.Config, before_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self.before_shutdown = before_shutdown

    async def shutdown(self, sockets: Any = None) -> None:
        self.before_shutdown()
        await super().shutdown(sockets)


class UiServer:
    def __init__(self, settings: Settings, *, host: str = "127.0.0.1", port: int, work: bool = False,
                 log: Callable[[str], None] | None = None, host_interval: float | None = None) -> None:
        self.settings = settings
        self.host, self.port = host, port
        self.log = log or (lambda text: None)
        # Load every plugin's contributions here, before any thread starts: the core's lazy plugin loading
        # is not made for several threads asking at once (one may see an empty registry).
        for names in (api.operation_names, api.strategy_names, api.executor_type_names, api.runtime_names):
            names()
        ledger = api.Ledger(settings.home)
        hub = Hub()
        view = LedgerView(ledger, hub)
        stop = threading.Event()
        self.guard = Guard.for_bind(host, port)
        hosts = HostMonitor(settings, ledger, hub, **({"interval": host_interval} if host_interval else {}))
        self.ctx = UiContext(settings, ledger, self.guard, hub, view, hosts,
                             ProgressBoard(settings, ledger, view, hub), Planner(settings, ledger, hub),
                             Thumbs(settings.home), environment(), stop, work=work)
        view.listeners.append(self.ctx.planner.changed)
        self.app = build(self.ctx)
        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=3, access_log=False)
        self.server = _Server(config, self._shutdown)
        self._ready: list[Callable[[], None]] = []
        self._thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None

    @property
    def url(self) -> str:
        shown = "localhost" if self.host in ("127.0.0.1", "localhost") else self.host
        if ":" in shown:
            shown = f"[{shown}]"
        base = f"http://{shown}:{self.port}/"
        return base + (f"?token={self.guard.token}" if self.guard.token else "")

    def on_ready(self, callback: Callable[[], None]) -> None:
        self._ready.append(callback)

    # ------------------------------------------------------------ services
    def _start_services(self) -> None:
        ctx = self.ctx
        ctx.view.start(ctx.stop)
        ctx.planner.start(ctx.stop)
        ctx.board.start(ctx.stop)
        ctx.hosts.start(ctx.stop)
        if ctx.work:
            self._worker = threading.Thread(target=self._work, name="ui-worker", daemon=True)
            self._worker.start()
        threading.Thread(target=self._announce, name="ui-ready", daemon=True).start()

    def _work(self) -> None:
        """The worker, as `cosmoskit worker` runs it, with its own ledger handle; its lines go to the Running page."""
        ctx = self.ctx

        def line(text: str) -> None:
            ctx.note(text)
            self.log(f"worker: {api.escape(text)}")

        try:
            api.Worker(self.settings, api.Ledger(self.settings.home), log=line).run(stop=ctx.stop)
        except Exception as exc:  # the pages go on; the queue waits for a worker
            line(f"stopped on an error: {type(exc).__name__}: {exc}")

    def _announce(self) -> None:
        while not self.server.started and not self.ctx.stop.is_set():
            time.sleep(0.05)
        for callback in self._ready:
            callback()

    def _shutdown(self) -> None:
        self.ctx.stop.set()
        self.ctx.hub.drop_all()  # open streams end, so uvicorn's graceful shutdown does not wait on them

    # ------------------------------------------------------------ running
    def serve(self) -> None:
        """Foreground, until Ctrl-C or SIGTERM (uvicorn handles them); running batches go on."""
        self._start_services()
        try:
            self.server.run()
        finally:
            self._shutdown()
            if self._worker is not None:
                self._worker.join(timeout=10)

    def start(self, timeout: float = 30.0) -> UiServer:
        """On a thread; returns once the server accepts connections."""
        self._start_services()
        self._thread = threading.Thread(target=self.server.run, name="ui-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the UI server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._shutdown()
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._worker is not None:
            self._worker.join(timeout=15)
        for thread in self.ctx.background:
            thread.join(timeout=5)

    def __enter__(self) -> UiServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
