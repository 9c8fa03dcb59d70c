"""``cosmoskit watch``: a render folder copied into the drop folder becomes queued runs, exactly once.

One main thread owns all decisions and every ledger write; a pool hashes and builds.  This module
only glues the stages together:

1. **Noticing** and **complete?** (``intake``): watchdog events and rescans; a READY file, or
   ``watch.settle_seconds`` without change.
2. **Identity** (``contents``, pool): the content hash; the ingest table is keyed by path + hash.
3. **Decide and claim** (``decisions`` pure, ``ingests`` in one transaction), then **move**
   (``moves``): to ``processed/``, or marked in place.
4. **Build** (``build``, pool): sidecar, encoding, one validated run per weight set.
5. **Commit** (``ingests``): each folder in its own transaction through the engine's queue: prompt,
   runs and ingest record, all or nothing, never twice.  A folder that cannot be built or recorded
   after its retries is rejected with the error; a crash between the steps leaves a ``claimed``
   record that the next watcher resumes.
6. **Refusing** (``moves``): ``rejected/NAME`` with ``REJECTED.txt``, one line per problem.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cosmoskit import api
from cosmoskit_dropfolder import records
from cosmoskit_dropfolder.build import Builder, Built, Defaults, Rejected
from cosmoskit_dropfolder.contents import Fingerprint, content_hash, ingest_key, printable, walk
from cosmoskit_dropfolder.decisions import Action, Decision, after_failure, recover
from cosmoskit_dropfolder.ingests import Backlog, Ingests, claimant_alive
from cosmoskit_dropfolder.intake import Intake, Tracked
from cosmoskit_dropfolder.moves import INGESTED_FILE, REJECTED_FILE, After, Folders
from cosmoskit_dropfolder.pool import Building, Hashing, Pool
from cosmoskit_dropfolder.records import IngestRecord, RejectWhy

__all__ = ["DropWatcher", "content_hash", "ingest_key", "walk"]

Emit = Callable[[dict[str, Any]], None]


class DropWatcher:
    def __init__(self, settings: Any, ledger: Any, *, folder: Path | None = None, emit: Emit | None = None,
                 settle: float | None = None, after: After | None = None, polling: bool | None = None,
                 rescan: float | None = None, jobs: int | None = None) -> None:
        w = settings.section("watch")
        self.settings = settings
        self.ledger = ledger
        root = Path(folder).expanduser() if folder else settings.home / Path(w["folder"]).expanduser()
        self.root = Path(os.path.abspath(root))
        self.settle = float(w["settle_seconds"] if settle is None else settle)
        self.after = after or w["after"]
        self.polling = bool(w["polling"] if polling is None else polling)
        self.rescan_every = float(w["rescan_seconds"] if rescan is None else rescan)
        self.jobs = int(w["jobs"] if jobs is None else jobs)
        self._emit = emit or (lambda event: None)
        self.me = api.process_owner()
        self.folders = Folders(self.root, self.after)
        self.processed, self.rejected = self.folders.processed, self.folders.rejected
        self.intake = Intake(self.root, self.settle, self.emit)
        self.engine = api.Engine(settings, ledger)
        self.ingests = Ingests(ledger, self.engine, self.me)
        self.builder = Builder(Defaults(w["prompt"], int(w["priority"]), float(w["fps"])), self.engine)
        self._pool: Pool | None = None
        self._built: list[Built] = []
        self._rebuild: list[tuple[float, Building]] = []     # builds that failed, to try again at a time
        self._recommit: list[tuple[float, Built]] = []       # commits that failed, likewise
        self._records = Backlog(self.ingests)
        self.counts = {"queued": 0, "runs": 0, "rejected": 0, "changed": 0, "duplicate": 0, "errors": 0}
        self.caught_up = self.intake.caught_up

    @property
    def tracked(self) -> dict[str, Tracked]:
        return self.intake.tracked

    @property
    def observer_kind(self) -> str:
        return self.intake.observer_kind

    # ------------------------------------------------------------ events out
    def emit(self, kind: str, folder: str | None, message: str, **data: Any) -> None:
        event = {"event": kind, "time": api.now(), "folder": folder, "message": message, **data}
        try:
            self._emit(event)
        except Exception:  # a broken sink must not stop the watcher
            pass

    def _start_observer(self) -> Any:
        return self.intake.start_observer(self.polling, self.rescan_every)

    # ------------------------------------------------------------ the loop
    def run(self, stop: threading.Event | None = None, *, once: bool = False) -> dict[str, int]:
        stop = stop or threading.Event()
        self.folders.make()
        try:  # load the registry and the operation once, before the pool's threads share the engine
            self.engine.operation("transfer")
        except Exception:
            pass  # each build reports it then, and the folder is rejected with it
        self.intake.listen_for_overflow()
        self._pool = Pool(self.jobs, self.intake.wake, self.builder.build)
        observer = self._start_observer()
        self.emit("watching", None, f"watching {self.root} ({self.observer_kind}): a folder is taken on "
                                    f"a READY file or {self.settle:g} s without change, then "
                                    f"{'moved to processed/' if self.after == 'move' else 'marked in place'}",
                  root=str(self.root), settle=self.settle, after=self.after, observer=self.observer_kind)
        next_rescan = 0.0
        try:
            self._recover()
            while not stop.is_set():
                try:
                    now = time.monotonic()
                    self.intake.drain(now)
                    if self.intake.overflowed(now) or now >= next_rescan:
                        self.intake.rescan(now, self.folders.make)
                        next_rescan = now + self.rescan_every
                    for t, w in self.intake.complete(time.monotonic()):
                        self._pool.hash(t.name, t.path, w)
                    self._collect()
                    self._flush()
                    if once and self._idle():
                        break
                except Exception as exc:  # a bug here must not end the watcher: say so, and go on
                    self.counts["errors"] += 1
                    self.emit("error", None, f"internal error: {type(exc).__name__}: {exc} (continuing)")
                    stop.wait(1.0)
                self.intake.wake.wait(self._timeout(next_rescan))
                self.intake.wake.clear()
        finally:
            if observer is not None:
                observer.stop()
            self._shutdown()
            if observer is not None:
                observer.join(timeout=5)
            self.intake.stop_listening()
            self.engine.close()
        return dict(self.counts)

    def _timeout(self, next_rescan: float) -> float:
        wake = self._records.next_at(self.intake.wake_at(next_rescan))
        for at, _ in [*self._rebuild, *self._recommit]:
            wake = min(wake, at)
        return max(0.0, min(wake - time.monotonic(), 5.0))

    def _idle(self) -> bool:
        if self._pool or self._built or self._rebuild or self._recommit or self._records:
            return False
        return self.intake.idle()

    def _shutdown(self) -> None:
        """Finish what is in flight (so nothing is left claimed), start nothing new."""
        if self._pool is None:
            return
        self._pool.stop()
        try:
            self._collect(final=True)
            self._flush(final=True)
        except Exception as exc:  # pragma: no cover - best effort on the way out
            self.emit("error", None, f"while stopping: {exc}")
        self._pool = None

    # ------------------------------------------------------------ pool results (main thread)
    def _collect(self, final: bool = False) -> None:
        assert self._pool is not None
        prints: list[tuple[Tracked | None, Fingerprint]] = []
        for done in self._pool.finished():
            job = done.job
            if isinstance(job, Hashing):
                t = self.tracked.get(job.name)
                if done.cancelled:
                    if t is not None:
                        t.state, t.due = "waiting", time.monotonic()
                elif done.error is not None:
                    self._hash_failed(t, job.name, done.error)
                else:
                    prints.append((t, done.result))
            elif done.cancelled:
                continue  # its claim stays: the next watcher resumes it
            elif done.error is not None:
                self._build_failed(job, done.error)
            elif isinstance(done.result, Rejected):
                self._reject(done.result.fp, done.result.dest, done.result.lines, done.result.why)
            else:
                self._built.append(done.result)
        if prints and not final:
            self._decide(prints)
        else:
            for t, _ in prints:
                if t is not None:
                    t.state = "waiting"

    def _hash_failed(self, t: Tracked | None, name: str, exc: BaseException) -> None:
        self.counts["errors"] += 1
        gone = isinstance(exc, FileNotFoundError) and not (self.root / name).exists()
        if gone:
            self.tracked.pop(name, None)
            self.emit("vanished", printable(name), f"{printable(name)}: gone before it could be taken (moved or "
                                                   f"deleted, or taken by another watcher)")
            return
        if t is None:
            return
        t.attempts += 1
        delay = after_failure("identity", t.attempts).delay
        self.intake.retry_later(t, delay, time.monotonic())
        self.emit("error", printable(name), f"{printable(name)}: {type(exc).__name__}: {exc}; trying again in "
                                            f"{delay:g} s")

    def _build_failed(self, job: Building, exc: BaseException) -> None:
        self.counts["errors"] += 1
        fp, dest, attempts = job.fp, job.dest, job.attempts + 1
        plan = after_failure("build", attempts, gone=isinstance(exc, FileNotFoundError) and not dest.exists())
        if plan.next == "vanished":
            self.emit("vanished", fp.name, f"{fp.name}: removed while it was being prepared")
            self._record(fp.key, {"state": "vanished"})
            self.tracked.pop(fp.name, None)
        elif plan.next == "give-up":
            self._reject(fp, dest, [f"could not be ingested after {attempts} attempts: {type(exc).__name__}: {exc}"],
                         why="error")
        else:
            self.emit("error", fp.name, f"{fp.name}: {type(exc).__name__}: {exc}; trying again in {plan.delay:g} s")
            self._rebuild.append((time.monotonic() + plan.delay, Building(fp, dest, attempts)))

    # ------------------------------------------------------------ decide, claim, act (main thread)
    def _decide(self, prints: list[tuple[Tracked | None, Fingerprint]]) -> None:
        try:
            decided = self.ingests.decide_and_claim([fp for _, fp in prints], self.folders.plan_dest)
        except Exception as exc:
            for t, fp in prints:
                self._hash_failed(t, fp.name, exc)
            return
        for (t, fp), (decision, dest) in zip(prints, decided, strict=True):
            try:
                self._act(t, fp, decision, dest)
            except Exception as exc:
                self._hash_failed(t, fp.name, exc)

    def _act(self, t: Tracked | None, fp: Fingerprint, decision: Decision, dest: Path | None) -> None:
        name, rec, action = fp.name, decision.record or {}, decision.action
        if action is Action.REJECT:
            self._reject(fp, fp.folder, list(decision.lines))
        elif action is Action.CLAIM:
            assert dest is not None
            self.folders.take(fp, dest)
            if decision.twin:
                twin = decision.twin
                self.emit("note", name, f"{name}: same content as {printable(twin.get('name') or '?')}, ingested "
                                        f"{(twin.get('ingested') or '')[:19]} as {twin.get('prompt_id')}; queuing "
                                        f"it again under this name")
            assert self._pool is not None
            self._pool.build(fp, dest, 0)
        elif action is Action.DONE:
            if not (fp.folder / INGESTED_FILE).exists():
                self.folders.mark_ingested(fp.folder, rec.get("prompt_id"), rec.get("runs") or [], rec.get("hash"),
                                           fp.path)
            self.intake.finish(t, fp.folder, fp.sig)
        elif action is Action.QUIET:
            self.intake.finish(t, fp.folder, fp.sig)
        elif action is Action.FINISH_MOVE:
            moved = Path(rec["dest"])
            self.folders.finish_move(fp, moved)
            self.folders.mark_ingested(moved, rec.get("prompt_id"), rec.get("runs") or [], rec.get("hash"), fp.path)
            self.emit("recovered", name, f"{name}: already queued as {rec.get('prompt_id')} "
                                         f"({len(rec.get('runs') or [])} run(s)); finished moving it to "
                                         f"{self.folders.rel(moved)}", prompt=rec.get("prompt_id"))
            self.intake.finish(t, None, fp.sig)
        elif action is Action.DUPLICATE:
            self.counts["duplicate"] += 1
            self._reject(fp, fp.folder, [f"identical to {name}, ingested {(rec.get('ingested') or '')[:19]} as "
                                         f"prompt {rec.get('prompt_id')} (now in "
                                         f"{self.folders.rel(Path(rec['dest']))}); not queued again"],
                         why="duplicate")
        elif action is Action.CHANGED:
            self.counts["changed"] += 1
            self._reject(fp, fp.folder, [
                f"a folder named {name} was ingested {(rec.get('ingested') or '')[:19]} as prompt "
                f"{rec.get('prompt_id')} with different content; it is not queued again. To queue this "
                f"content as new work, rename the folder (e.g. {name}-v2) and drop it again"], why="changed")
        elif action is Action.CHANGED_IN_PLACE:
            self.counts["changed"] += 1
            self.emit("changed", name, f"{name}: changed after it was ingested as {rec.get('prompt_id')}; "
                                       f"not queued again (copy it to a new folder to queue the new content)",
                      prompt=rec.get("prompt_id"))
            self.intake.finish(t, fp.folder, fp.sig)
        elif action is Action.BUSY and t is not None:
            self.intake.busy_elsewhere(t, time.monotonic())

    # ------------------------------------------------------------ commit (main thread)
    def _flush(self, final: bool = False) -> None:
        now = time.monotonic()
        due, self._rebuild = [r for r in self._rebuild if r[0] <= now], [r for r in self._rebuild if r[0] > now]
        for _, job in due:
            if not final:  # when stopping, a failed build stays claimed: the next watcher resumes it
                assert self._pool is not None
                self._pool.build(job.fp, job.dest, job.attempts)
        again, self._recommit = [r for r in self._recommit if r[0] <= now], [r for r in self._recommit if r[0] > now]
        built, self._built = self._built + [b for _, b in again], []
        for b in built:
            self._commit(b)  # one transaction per folder: a failure stays with its folder
        for name, message in self._records.write(now):
            self.counts["errors"] += 1
            self.emit("error", name, message)

    def _record(self, key: str, changes: IngestRecord) -> None:
        self._records.add(key, changes)

    def _commit(self, b: Built) -> None:
        try:
            check, state = self.ingests.commit(b)
        except Exception as exc:
            self._commit_failed(b, exc)
            return
        if check in ("commit", "already"):
            self._after_commit(b)
            return
        why = "another watcher claimed it" if check == "taken" else f"its ingest record is {state or 'missing'}"
        self.emit("skipped", b.fp.name, f"{b.fp.name}: not queued, {why}")
        self.intake.finish(self._tracked_at(b.fp), None, b.fp.sig)  # a rescan looks at it afresh

    def _commit_failed(self, b: Built, exc: Exception) -> None:
        self.counts["errors"] += 1
        b.attempts += 1
        plan = after_failure("commit", b.attempts)
        error = printable(f"{type(exc).__name__}: {exc}")  # it may quote what could not be written
        if plan.next == "retry":
            self.emit("error", b.fp.name, f"{b.fp.name}: could not be written to the ledger ({error}); trying "
                                          f"again in {plan.delay:g} s")
            self._recommit.append((time.monotonic() + plan.delay, b))
            return
        try:  # the last attempt may have failed after its write: then it is queued, not rejected
            already = self.ingests.check(b)[0] == "already"
        except Exception:
            already = False
        if already:
            self._after_commit(b)
            return
        self._reject(b.fp, b.dest, [f"could not be recorded in the ledger after {b.attempts} attempts: {error}"],
                     why="error")

    def _after_commit(self, b: Built) -> None:
        runs = b.runs
        self.counts["queued"] += 1
        self.counts["runs"] += len(runs)
        try:
            self.folders.mark_ingested(b.dest, b.prompt["id"], [r["id"] for r in runs], b.fp.hash, b.fp.path,
                                       runs=runs, prompt=b.prompt)
            self.folders.clear_rejection(b.dest)
        except OSError as exc:
            self.emit("error", b.fp.name, f"{b.fp.name}: queued, but the INGESTED.txt marker could not be written "
                                          f"({exc})")
        weights = "; ".join(",".join(f"{k}={v:g}" for k, v in r["params"]["weights"].items()) for r in runs)
        in_place = b.dest == Path(b.fp.path)
        where = "marked in place" if in_place else f"moved to {self.folders.rel(b.dest)}"
        note = f" [{'; '.join(b.notes)}]" if b.notes else ""
        self.emit("queued", b.fp.name, f"{b.fp.name}: queued {len(runs)} run(s) of prompt {b.prompt['id']} "
                                       f"{b.prompt['name']!r} ({weights}); {where}{note}",
                  prompt=b.prompt["id"], runs=[r["id"] for r in runs], dest=str(b.dest), notes=b.notes)
        self.intake.finish(self._tracked_at(b.fp), b.dest if in_place else None, b.fp.sig)

    def _tracked_at(self, fp: Fingerprint) -> Tracked | None:
        """The tracked folder ``fp`` was dropped as, if it is still the one tracked under that name."""
        if os.path.dirname(fp.path) != str(self.root):
            return None
        t = self.tracked.get(fp.name)
        return t if t is not None and t.path == Path(fp.path) else None

    # ------------------------------------------------------------ rejecting
    def _reject(self, fp: Fingerprint, folder: Path, lines: list[str], why: RejectWhy = "input") -> None:
        name = fp.name
        if why in ("input", "error"):
            self.counts["rejected"] += 1
        try:
            dest = self.folders.reject(fp, folder, lines)
        except FileNotFoundError:
            self.emit("vanished", name, f"{name}: removed before it could be rejected")
            self.tracked.pop(name, None)
            return
        except OSError as exc:
            self.emit("error", name, f"{name}: rejected ({lines[0]}) but could not be moved to rejected/ ({exc})")
            self.intake.finish(self.tracked.get(name), fp.folder, fp.sig)
            return
        self._record(fp.key, records.rejected(fp, why, lines, str(dest), api.now()))
        more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
        kind = {"duplicate": "duplicate", "changed": "changed"}.get(why, "rejected")
        self.emit(kind, name, f"{name}: {lines[0]}{more} -> {self.folders.rel(dest)}/{REJECTED_FILE}", reasons=lines,
                  dest=str(dest))
        t = self.tracked.get(name)
        if t is not None and t.path == Path(fp.path):
            self.tracked.pop(name, None)

    # ------------------------------------------------------------ recovery
    def _recover(self) -> None:
        """Claims left by a watcher that died between claiming and committing: resume them."""
        try:
            claims = self.ingests.claims()
        except Exception as exc:
            self.emit("error", None, f"cannot read the ingest table ({exc})")
            return
        for key, rec in claims:
            path, dest = rec.get("path") or "", rec.get("dest") or ""
            what = recover(rec, claimant_alive=claimant_alive(rec), at_path=os.path.isdir(path),
                           at_dest=bool(dest) and os.path.isdir(dest))
            if what == "vanished":
                self._record(key, {"state": "vanished"})
                self.emit("vanished", rec.get("name"), f"{rec.get('name')}: claimed by a watcher that stopped, "
                                                       f"and no longer on disk")
            elif what == "resume":
                fp = Fingerprint(rec.get("name") or Path(dest).name, path, Path(dest), rec.get("hash") or "",
                                 rec.get("sig") or "", (), rec.get("files") or 0, rec.get("bytes") or 0)
                self.emit("resume", fp.name, f"{fp.name}: resuming an ingest a stopped watcher had begun "
                                             f"({self.folders.rel(Path(dest))})")
                assert self._pool is not None
                self._pool.build(fp, Path(dest), 0)
            # busy: its watcher runs; rescan: still where it was dropped, the catch-up scan takes it again
