"""The engine: claims runs, writes batch folders, launches through executors, follows, and finishes.

It owns no operation, executor or batching policy: those come from plugins.
Every state change goes through the ledger first, so a process that dies at
any point leaves enough behind for the next one to reattach instead of
launching again (README.md, "How it works").
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import orjson

from cosmoskit._core import ids, owner, plugins, queueops, timeutil, verdicts
from cosmoskit._core.batchjob import (
    COMMAND_ARGS,
    COMMAND_JSON,
    LAUNCH_ENV,
    LOG,
    MANIFEST,
    STOP_ARGS,
    STOP_REASON,
    BatchJob,
)
from cosmoskit._core.config import Settings
from cosmoskit._core.errors import CosmoskitError
from cosmoskit._core.executor import Executor, PollResult
from cosmoskit._core.ledger import BATCH_ACTIVE, RUN_ACTIVE, RUN_TERMINAL, Ledger, Tx
from cosmoskit._core.operation import Operation, Outcome, Requirement
from cosmoskit._core.queries import prompts_of, run_folder
from cosmoskit._core.records import BatchRecord, PromptRecord, RunRecord
from cosmoskit._core.remotefiles import LAUNCHER
from cosmoskit._core.runtime import Runtime, env_name_problem
from cosmoskit._core.slots import NoFreeSlot, Slots, allocate, docker_gpus, leases_of, slots_for
from cosmoskit._core.strategy import Batch

Event = Callable[[str, dict[str, Any]], None]
SubmitMode = Literal["now", "queue", "dry-run"]
DRY_RUN_FILES = ("spec.json", "batch.jsonl", "command.json", "launch.env")


@dataclass
class Submission:
    """What ``Engine.submit`` did: the runs (as stored; for a dry run, as they would be) and, for a dry
    run, the folder it wrote and the text of its files."""

    runs: list[RunRecord]
    mode: SubmitMode
    folder: Path | None = None
    files: dict[str, str] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)  # a dry run's batches and estimated GPU time

    @property
    def unfinished(self) -> list[RunRecord]:
        """Runs run now that did not complete (failed, cancelled, or still waiting for a relaunch)."""
        return [r for r in self.runs if r.get("status") != "completed"] if self.mode == "now" else []


VANISH_RECHECK_SECONDS = 1.0  # how long to wait before looking again at a batch that seems to have vanished


def _quiet(kind: str, data: dict[str, Any]) -> None:
    pass


def run_checks(ex: Executor, requirements: list[Requirement]) -> list[bool]:
    """Each requirement's test at the place, all in one round trip."""
    if not requirements:
        return []
    script = "\n".join(
        f"if ( {req.test} ) >/dev/null 2>&1; then echo '@@req {i} ok'; else echo '@@req {i} no'; fi"
        for i, req in enumerate(requirements)
    )
    _, out = ex.shell(script)
    ok = {line.split()[1] for line in out.splitlines() if line.startswith("@@req ") and line.endswith(" ok")}
    return [str(i) in ok for i in range(len(requirements))]


def _deleted_run(run_id: str) -> RunRecord:
    return {"id": run_id, "prompt_id": None, "operation": "", "params": {}, "status": "cancelled", "created": ""}


def container_name(operation: str, batch_id: str) -> str:
    return f"cosmos_{operation}_{batch_id.split('_', 1)[1][:8]}"


def _nul_joined(argv: list[str]) -> bytes:
    """An argv as launch.sh reads it (``mapfile -d ''``): no shell ever parses it."""
    return b"".join(a.encode() + b"\0" for a in argv)


def expand_home(value: Any, expand: Callable[[str], str]) -> Any:
    """Every ``~/…`` in model settings (a path, a ``host:container`` mount, an environment value) as the place
    spells it: nothing that runs there expands it (launch.sh runs an argv, not a shell line)."""
    if isinstance(value, str):
        return expand(value) if value == "~" or value.startswith("~/") else value
    if isinstance(value, list):
        return [expand_home(v, expand) for v in value]
    if isinstance(value, dict):
        return {k: expand_home(v, expand) for k, v in value.items()}
    return value


def link_or_copy(src: Path, dest: Path) -> None:
    """Hard-link when possible (no extra space), else copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


class Engine:
    def __init__(self, settings: Settings, ledger: Ledger) -> None:
        self.settings = settings
        self.ledger = ledger
        self.home = settings.home
        self._operations: dict[str, Operation] = {}
        self._executors: dict[str, Executor] = {}
        self._runtimes: dict[str, Runtime] = {}
        self._checked: dict[tuple[str, str], list[tuple[Requirement, bool]]] = {}
        self._devices: dict[str, list[str] | None] = {}

    # ------------------------------------------------------------------ plugins
    def operation(self, name: str) -> Operation:
        if name not in self._operations:
            self._operations[name] = plugins.get_operation(name)(self.settings)
        return self._operations[name]

    def executor(self, label: str | None = None) -> Executor:
        label = label or self.settings["default_executor"]
        if label not in self._executors:
            raw = self.settings.executor_config(label)
            cls = plugins.get_executor_type(raw["type"])
            self._executors[label] = cls(label, cls.validate_config(label, raw, self.settings), self.settings)
        return self._executors[label]

    def close(self) -> None:
        for ex in self._executors.values():
            try:
                ex.close()
            except Exception:
                pass
        self._executors.clear()

    # ------------------------------------------------------------------ runs
    def new_runs(
        self,
        operation: str,
        prompt_ids: Iterable[str | None],
        params: dict[str, Any],
        *,
        priority: int = 0,
        extra: dict[str, Any] | None = None,
        prompts: dict[str, PromptRecord] | None = None,
        variations: list[dict[str, Any]] | None = None,
    ) -> list[RunRecord]:
        """Validate and build run records (nothing is written).

        One run per prompt, or with ``variations`` one per prompt and variation (each laid over ``params``),
        a prompt's variations side by side.  ``prompts`` supplies prompt records not in the ledger yet (a
        caller adding a prompt and its runs in one transaction); other ids are looked up by unique prefix."""
        op = self.operation(operation)
        lo, hi = queueops.PRIORITY_RANGE
        if isinstance(priority, bool) or not isinstance(priority, int) or not lo <= priority <= hi:
            raise CosmoskitError(f"priority must be an integer from {lo} to {hi}, not {priority!r}")
        prompt_ids = list(prompt_ids)
        given = dict(prompts or {})
        missing = [p for p in prompt_ids if p is not None and p not in given]
        if missing:
            with self.ledger.read() as tx:
                given.update({p: tx.get_prompt(p) for p in missing})
        docs: list[RunRecord] = []
        for ref in prompt_ids:
            prompt = given.get(ref) if ref is not None else None
            for variation in variations or [{}]:
                run_params = op.validate({**params, **variation}, prompt)
                docs.append(
                    {
                        "id": ids.new_id("rs"),
                        "prompt_id": prompt["id"] if prompt else None,
                        "operation": operation,
                        "params": run_params,
                        "status": "queued",
                        "priority": priority,
                        "attempts": 0,
                        "batch_id": None,
                        "outputs": {},
                        "error": None,
                        "reason": None,
                        "parent_run": (extra or {}).get("parent_run"),
                        "rating": None,
                        "started": None,
                        "finished": None,
                        "created": timeutil.now(),
                    }
                )
                docs[-1].update({k: v for k, v in (extra or {}).items() if k != "parent_run"})  # type: ignore[typeddict-item]
        return docs

    def queue(
        self, docs: list[RunRecord], *, prompts: Iterable[PromptRecord] = (), also: Callable[[Tx], None] | None = None
    ) -> list[RunRecord]:
        """Put new runs in the queue, in one transaction with the ``prompts`` they need that are not in the
        ledger yet and whatever ``also`` writes (the drop folder's ingest record): all of it or none."""
        with self.ledger.transaction() as tx:
            for prompt in prompts:
                tx.add_prompt(dict(prompt))
            runs = tx.add_runs(docs)
            if also is not None:
                also(tx)
            return runs

    def submit(
        self,
        operation: str,
        prompt_refs: Iterable[str | None],
        params: dict[str, Any],
        *,
        variations: list[dict[str, Any]] | None = None,
        mode: SubmitMode = "now",
        priority: int = 0,
        extra: dict[str, Any] | None = None,
        executor: str | None = None,
        show_log: bool = False,
        quiet: bool = False,
    ) -> Submission:
        """The one way new runs start: validate them all (nothing is written on a bad parameter), then write
        a dry-run folder, queue them, or run them now in the foreground (following them to the end).

        One run per prompt, or with ``variations`` one per prompt and variation (each a dict of parameters
        laid over ``params``), in that order."""
        docs = self.new_runs(operation, prompt_refs, params, variations=variations, priority=priority, extra=extra)
        if len(docs) > 1:  # one id for the runs of one command, so its variations can sit side by side
            sweep = ids.new_id("sw")
            for doc in docs:
                doc["sweep"] = sweep
        if mode == "dry-run":
            batches = self.preview(docs)
            job = self.dry_run([d for d in docs if d["id"] in set(batches[0].run_ids)], executor=executor)
            files = {name: job.local(name).read_text() for name in DRY_RUN_FILES if job.local(name).exists()}
            return Submission(docs, mode, job.dir, files, self.plan_summary(batches))
        if mode == "queue":
            return Submission(self.queue(docs), mode)
        return Submission(self.run_now(docs, executor=executor, show_log=show_log, quiet=quiet), mode)

    def preview(self, docs: list[RunRecord]) -> list[Batch]:
        """The batches these new runs would be launched in now (the configured strategy's plan)."""
        from cosmoskit._core.planning import plan

        with self.ledger.read() as tx:
            prompts = prompts_of(tx, docs)
        return plan(self, docs, prompts)

    def plan_summary(self, batches: list[Batch]) -> dict[str, Any]:
        """Runs, batches and estimated GPU time of a plan (the cost model's), for a dry run."""
        from cosmoskit._core.costmodel import CostModel
        from cosmoskit._core.estimate import batch_seconds, summary

        model = CostModel.from_settings(self.settings)
        planned = [
            {
                "runs": b.run_ids,
                "controls": sorted(b.controls),
                "gpu_seconds": round(batch_seconds(b, model), 1),
            }
            for b in batches
        ]
        return {**summary(batches, model), "plan": planned}

    def run_now(
        self, docs: list[RunRecord], *, executor: str | None = None, show_log: bool = False, quiet: bool = False
    ) -> list[RunRecord]:
        """Launch new runs (from ``new_runs``) now as one batch, with a live display, follow them to the end,
        relaunch what deserves a second try, and return the final run records."""
        from cosmoskit._core.foreground import run_now

        return run_now(self, docs, executor=executor, show_log=show_log, quiet=quiet)

    # ------------------------------------------------------------------ launching
    def launch(
        self,
        run_ids: list[str] | None = None,
        *,
        executor: str | None = None,
        docs: list[RunRecord] | None = None,
        strategy: str | None = None,
        on_event: Event = _quiet,
        partial: bool = False,
        max_attempts: int | None = None,
        stage_behind: Collection[str] = (),
    ) -> BatchRecord:
        """Claim queued runs (or insert new ``docs`` already claimed) and a GPU slot, stage and start one batch.

        The batch record with its handle and its GPUs (the lease, slots.py) is in the ledger before
        anything is started; if staging or launching fails, the runs go back to the queue (or fail, for
        input problems or once ``max_attempts`` is spent) and the error is raised.  With ``partial``, runs
        another process claimed first are left out instead of failing the claim.  Every slot taken raises
        ``NoFreeSlot``, unless the batch may be staged behind a running one of ``stage_behind`` (batches
        the caller follows): then it is returned ``staged``, and the caller calls ``start_staged`` when that
        one's model exits.
        """
        ex = self.executor(executor)
        me = owner.me()
        try:
            devices = self.gpu_devices(ex)
        except CosmoskitError as exc:  # the place cannot be asked: the runs wait in the queue, saying why
            self._note_launch_error(run_ids or [], exc)
            raise
        with self.ledger.transaction() as tx:
            if docs is not None:
                for d in docs:
                    d["status"] = "staging"
                runs = tx.add_runs(docs)
            else:
                runs = []
                for rid in run_ids or []:
                    run = tx.run(rid)
                    if run is None:
                        raise CosmoskitError(f"no run {rid}")
                    if run["status"] != "queued":
                        if partial:
                            continue
                        raise CosmoskitError(f"run {rid} is {run['status']}, not queued; another process has it")
                    runs.append(run)
            if not runs:
                raise CosmoskitError("nothing to launch")
            operations = {r["operation"] for r in runs}
            if len(operations) != 1:
                raise CosmoskitError(f"one batch runs one operation, not {', '.join(sorted(operations))}")
            op = self.operation(runs[0]["operation"])
            if not op.batchable and len(runs) > 1:
                raise CosmoskitError(f"{op.name} runs one at a time; got {len(runs)}")
            slots = self.slots_at(op, ex, runs, devices)
            grant = allocate(slots, leases_of(tx.active_batches(), ex.label), behind=stage_behind)
            if grant is None:
                raise NoFreeSlot(f"every GPU slot on {ex.label} is taken")
            batch = tx.add_batch(
                {
                    "operation": op.name,
                    "executor": ex.label,
                    "executor_type": ex.name,
                    "runs": [r["id"] for r in runs],
                    "strategy": strategy,
                    "state": "staging",
                    "owner": me,
                    "devices": list(grant.devices),
                    "pinned": slots.pinned,
                    "after": grant.after,
                    "handle": {},
                    "log_path": None,
                    "started": None,
                    "finished": None,
                }
            )
            bid = batch["id"]
            for r in runs:
                tx.update_run(
                    r["id"],
                    status="staging",
                    batch_id=bid,
                    attempts=r.get("attempts", 0) + 1,
                    executor=ex.label,
                    error=None,
                    reason=None,
                    retry=False,
                )
            prompts = prompts_of(tx, runs)
        runs = [{**r, "batch_id": bid} for r in runs]
        try:
            self.check_place(op, ex)
            job = self._job(batch, op, runs, prompts, ex)
            handle = {
                "executor": ex.label,
                "type": ex.name,
                "batch_dir": job.remote_root,
                "container": job.container,
                **ex.handle_base(),
            }
            self._write_batch_folder(job, ex)
            with self.ledger.transaction() as tx:
                tx.update_batch(bid, handle=handle, log_path=str(job.local(LOG)))
            on_event("staging", {"batch": bid, "runs": len(runs)})
            figures = ex.stage(
                job,
                progress=lambda label, done, total: on_event(
                    "transfer", {"label": label, "done": done, "total": total}
                ),
            )
            if grant.after is not None:
                with self.ledger.transaction() as tx:
                    batch = tx.update_batch(bid, state="staged", staging=figures or {})
                on_event("staged", {"batch": bid, "after": grant.after})
                return batch
            extra = ex.launch(job)
        except BaseException as exc:
            self._abort_launch(bid, exc, max_attempts)
            raise
        with self.ledger.transaction() as tx:
            tx.update_batch(bid, staging=figures or {})
        return self._started(bid, {**handle, **(extra or {})}, on_event)

    def _note_launch_error(self, run_ids: list[str], exc: CosmoskitError) -> None:
        with self.ledger.transaction() as tx:
            for rid in run_ids:
                run = tx.run(rid)
                if run is not None and run["status"] == "queued":
                    tx.update_run(rid, error=f"launch failed: {exc}", reason="launch")

    def _started(self, batch_id: str, handle: dict[str, Any], on_event: Event) -> BatchRecord:
        stamp = timeutil.now()
        with self.ledger.transaction() as tx:
            batch = tx.update_batch(batch_id, handle=handle, state="running", started=stamp, after=None)
            for rid in batch["runs"]:
                run = tx.run(rid)
                if run is not None and run["status"] == "staging":
                    tx.update_run(rid, status="running", started=stamp)
        on_event("launched", {"batch": batch_id, "handle": handle})
        return batch

    def start_staged(
        self, batch_id: str, *, on_event: Event = _quiet, max_attempts: int | None = None
    ) -> BatchRecord | None:
        """Start a staged batch (the one before it on its GPUs has exited); None if it is no longer staged
        (cancelled meanwhile).  A failed start sends its runs back to the queue, as a failed launch does."""
        with self.ledger.transaction() as tx:
            batch = tx.batch(batch_id)
            if batch is None or batch["state"] != "staged":
                return None
            batch = tx.update_batch(batch_id, state="staging", after=None)
        try:
            extra = self.executor(batch["executor"]).launch(self.job_for(batch))
        except BaseException as exc:
            self._abort_launch(batch_id, exc, max_attempts)
            raise
        return self._started(batch_id, {**batch["handle"], **(extra or {})}, on_event)

    def unstage(self, batch_id: str, why: str, *, cancel: Iterable[str] = ()) -> list[str]:
        """A staged batch that will not start (cancelled, its slot or its process gone): its runs go back to
        the queue as if never claimed (the attempt does not count), those in ``cancel`` are cancelled.
        Returns the runs requeued."""
        with self.ledger.transaction() as tx:
            return self._unstage(tx, batch_id, why, set(cancel))

    @staticmethod
    def _unstage(tx: Tx, batch_id: str, why: str, cancel: set[str]) -> list[str]:
        batch = tx.batch(batch_id)
        if batch is None or batch["state"] != "staged":
            return []
        requeued, stamp = [], timeutil.now()
        for rid in batch["runs"]:
            run = tx.run(rid)
            if run is None or run["status"] not in RUN_ACTIVE:
                continue
            if rid in cancel:
                tx.update_run(
                    rid, status="cancelled", error="cancelled on request", reason="cancelled", finished=stamp
                )
            else:
                attempts = max(0, int(run.get("attempts") or 1) - 1)
                tx.update_run(rid, status="queued", batch_id=None, attempts=attempts, executor=None)
                requeued.append(rid)
        tx.update_batch(batch_id, state="cancelled", error=f"never started: {why}", finished=stamp)
        return requeued

    def gpu_devices(self, ex: Executor) -> list[str] | None:
        """The GPUs batches are pinned to at ``ex`` (asked once per engine; None: unpinned slots)."""
        if ex.label not in self._devices:
            self._devices[ex.label] = ex.gpu_devices()
        return self._devices[ex.label]

    def slots_at(self, op: Operation, ex: Executor, runs: list[RunRecord], devices: list[str] | None = None) -> Slots:
        """The slots ``ex`` offers a batch of these runs (one per ``op.gpus(runs)`` GPUs); refuses a batch
        that needs more GPUs than the place has."""
        devices = devices if devices is not None else self.gpu_devices(ex)
        need = op.gpus(runs)
        slots = slots_for(devices, need, ex.concurrency())
        if not slots.groups:
            raise CosmoskitError(
                f"{ex.label} has {len(devices or [])} GPU(s); {op.model or op.name} there needs {need} per batch",
                hint=f"lower --num-gpus, or list more GPUs in executors.{ex.label}.gpus",
            )
        return slots

    def _abort_launch(self, batch_id: str, exc: BaseException, max_attempts: int | None = None) -> None:
        """Staging or launching failed: input problems fail the runs, anything else requeues them
        (the attempt counts, so a host that keeps failing ends in a failed run, not a loop)."""
        message = str(exc) or exc.__class__.__name__
        input_problem = isinstance(exc, CosmoskitError) and getattr(exc, "input_problem", False)
        with self.ledger.transaction() as tx:
            batch = tx.batch(batch_id)
            if batch is None:
                return
            for rid in batch["runs"]:
                run = tx.run(rid)
                if run and run["status"] in RUN_ACTIVE:
                    if input_problem:
                        tx.update_run(rid, status="failed", error=message, reason="input", finished=timeutil.now())
                    elif max_attempts is not None and run.get("attempts", 1) >= max_attempts:
                        tx.update_run(
                            rid,
                            status="failed",
                            error=f"launch failed: {message}",
                            reason="launch",
                            finished=timeutil.now(),
                        )
                    else:
                        tx.update_run(
                            rid, status="queued", batch_id=None, error=f"launch failed: {message}", reason="launch"
                        )
            tx.update_batch(batch_id, state="failed", error=f"launch failed: {message}", finished=timeutil.now())

    def _job(
        self,
        batch: BatchRecord | dict[str, Any],
        op: Operation,
        runs: list[RunRecord],
        prompts: dict[str, PromptRecord],
        ex: Executor,
        folder: Path | None = None,
    ) -> BatchJob:
        job = BatchJob(
            batch["id"],
            op,
            runs,
            prompts,
            folder or self.home / "batches" / batch["id"],
            "",
            self.model_at(op, ex),
            container=container_name(op.name, batch["id"]),
            place=ex,
            gpus=list(batch.get("devices") or []) if batch.get("pinned") else [],
        )
        job.remote_root = (batch.get("handle") or {}).get("batch_dir") or ex.remote_dir(job)
        return job

    def model_at(self, op: Operation, ex: Executor) -> dict[str, Any]:
        """The model settings where ``ex`` runs ``op``: the executor's ``model:`` view, then the operation's
        own settings for its model, then the executor's ``models:`` overrides for that model."""
        overrides = (ex.config.get("models") or {}).get(op.model or op.name) or {}
        settings: dict[str, Any] = expand_home(op.model_settings(ex.model_settings(), dict(overrides)), ex.expand_home)
        return settings

    def requirements(self, op: Operation, ex: Executor) -> list[Requirement]:
        model = self.model_at(op, ex)
        runtime = op.runtime or str(model.get("runtime") or self.settings.get("model.runtime"))
        return op.requirements(model, runtime)

    def place_checks(self, op: Operation, ex: Executor, *, refresh: bool = False) -> list[tuple[Requirement, bool]]:
        """Each thing the place must have to run ``op`` (repository, image, checkpoints, token, GPU memory …)
        and whether it has it; asked once per engine unless ``refresh``."""
        key = (ex.label, op.name)
        if refresh or key not in self._checked:
            wanted = self.requirements(op, ex)
            self._checked[key] = list(zip(wanted, run_checks(ex, wanted), strict=True))
        return self._checked[key]

    def check_place(self, op: Operation, ex: Executor) -> None:
        """A place that cannot run ``op`` is refused before anything is staged, in one line."""
        missing = [req for req, ok in self.place_checks(op, ex) if not ok]
        if missing:
            first = missing[0]
            more = f" (and {len(missing) - 1} more: `cosmoskit status --host {ex.label}`)" if len(missing) > 1 else ""
            raise CosmoskitError(
                f"{ex.label} cannot run {op.model or op.name}: missing {first.what}{more}",
                hint=first.fix or f"`cosmoskit status --host {ex.label}` lists what it needs",
            )

    def runtime(self, name: str | None) -> Runtime:
        """The runtime ``model.runtime`` (or an executor's override) names, one instance per engine."""
        name = name or self.settings.get("model.runtime")
        if name not in self._runtimes:
            self._runtimes[name] = plugins.get_runtime(name)(self.settings)
        return self._runtimes[name]

    def _write_batch_folder(self, job: BatchJob, ex: Executor) -> None:
        """The batch folder: the operation's spec files, the runtime's command and the launcher."""
        job.dir.mkdir(parents=True, exist_ok=True)
        argv = job.operation.prepare(job)
        runtime = self.runtime(job.operation.runtime or job.model.get("runtime"))
        facts = ex.host_facts()
        if job.gpus:
            facts["gpus"] = docker_gpus(job.gpus)
        launch = runtime.command(argv, job, facts)
        job.write_json(
            COMMAND_JSON,
            {
                "batch": job.id,
                "operation": job.operation.name,
                "runs": [r["id"] for r in job.runs],
                "argv": argv,
                "shell": shlex.join(argv),
                "runtime": runtime.name,
                "launch": launch.argv,
                "cwd": launch.cwd or job.remote_root,
            },
        )
        job.local(COMMAND_ARGS).write_bytes(_nul_joined(launch.argv))
        if launch.stop:
            job.local(STOP_ARGS).write_bytes(_nul_joined(launch.stop))
        job.write_json(MANIFEST, {"inputs": sorted(job.inputs.values(), key=lambda i: i["name"])})
        env = {
            "BATCH_ID": job.id,
            "CONTAINER": job.container,
            "RUNTIME": runtime.name,
            "RUN_DIR": launch.cwd or "",
            "TIMEOUT_SECONDS": str(int(self.settings.get("timeouts.batch_seconds"))),
        }
        lines = [f"{k}={shlex.quote(str(v))}" for k, v in env.items()]
        if job.gpus:  # the process and its children see only their slot's GPUs (a container: --gpus)
            lines.append(f"export CUDA_VISIBLE_DEVICES={','.join(job.gpus)}")
        # the runtime's own exports last: they are what makes its command work (PYTHONPATH …)
        for key, value in {**(job.model.get("env") or {}), **launch.env}.items():
            problem = env_name_problem(key)
            if problem:
                raise CosmoskitError(f"cannot export {problem}", hint="fix model.env in cosmoskit.yaml")
            lines.append(f"export {key}={shlex.quote(str(value))}")
        job.write_text(LAUNCH_ENV, "\n".join(lines) + "\n")
        shutil.copyfile(LAUNCHER, job.local("launch.sh"))

    def dry_run(self, docs: list[RunRecord], *, executor: str | None = None) -> BatchJob:
        """Write a batch folder for ``docs`` without touching the ledger or starting anything."""
        ex = self.executor(executor)
        op = self.operation(docs[0]["operation"])
        batch_id = "bt_dryrun" + ids.new_id("bt")[3:9]
        batch: dict[str, Any] = {"id": batch_id, "handle": {}}
        for d in docs:
            d.setdefault("id", ids.new_id("rs"))
        with self.ledger.read() as tx:
            prompts = prompts_of(tx, docs)
        job = self._job(batch, op, docs, prompts, ex, folder=self.home / "batches" / "dry-run" / batch_id)
        self._write_batch_folder(job, ex)
        return job

    # ------------------------------------------------------------------ following
    def job_for(self, batch: BatchRecord) -> BatchJob:
        op = self.operation(batch["operation"])
        ex = self.executor(batch["executor"])
        with self.ledger.read() as tx:
            # a run deleted meanwhile still holds its line in the batch
            runs = [tx.run(rid) or _deleted_run(rid) for rid in batch["runs"]]
            prompts = prompts_of(tx, runs)
        return self._job(batch, op, runs, prompts, ex)

    def follow(
        self,
        batch_id: str,
        *,
        on_event: Event = _quiet,
        max_attempts: int = 2,
        poll_seconds: float | None = None,
        stop: Any = None,
        on_exit: Callable[[str], None] | None = None,
    ) -> dict[str, Outcome]:
        """Watch a running batch to its end (streaming its log into progress events), then finish it.

        ``on_exit(batch_id)`` is called the moment its model is seen to have exited, before the outputs
        are fetched: the worker starts the batch staged behind it there.  With ``stop`` (an Event) set,
        it returns without finishing: the batch goes on where it runs and the next process to look
        reattaches."""
        poll_seconds = poll_seconds or float(self.settings.get("timeouts.poll_seconds"))
        with self.ledger.transaction() as tx:
            batch = tx.batch(batch_id)
            if batch is None:
                raise CosmoskitError(f"no batch {batch_id}")
            if batch["state"] in BATCH_ACTIVE and not owner.is_me(batch.get("owner")):
                batch = tx.update_batch(batch_id, owner=owner.me())
        if batch["state"] not in BATCH_ACTIVE:
            return {}
        op = self.operation(batch["operation"])
        ex = self.executor(batch["executor"])
        handle = batch["handle"]
        offset, partial = 0, b""
        timeout = float(self.settings.get("timeouts.batch_seconds"))
        started = timeutil.parse(batch["started"]) if batch.get("started") else None  # type: ignore[arg-type]
        delay = min(0.2, poll_seconds)
        stopping = False
        unreachable = 0.0
        while True:
            try:
                result = ex.wait(handle, delay)  # returns at once when the model exits
            except CosmoskitError as exc:
                # The host may be rebooting or the link down: the batch lives on there, so keep trying.
                if stop is not None and stop.is_set():
                    return {}
                on_event("unreachable", {"batch": batch_id, "error": str(exc)})
                unreachable = min(max(unreachable * 2, 1.0), 30.0)
                (stop.wait if stop is not None else time.sleep)(unreachable)
                continue
            unreachable = 0.0
            if result.state == "vanished":
                result = self._confirm_vanished(ex, handle, result)
            if result.state != "running" and on_exit is not None:
                on_exit(batch_id)
                on_exit = None
            try:
                data, offset = ex.read_log(handle, offset)
            except CosmoskitError:
                data = b""
            if data:
                chunk = partial + data
                lines = chunk.split(b"\n")
                partial = lines.pop()
                for raw in lines:
                    line = raw.decode("utf-8", "replace")
                    on_event("log", {"line": line})
                    event = op.progress(line)
                    if event:
                        on_event("progress", event)
            if result.state != "running":
                break
            if stop is not None and stop.is_set():
                return {}
            if (
                not stopping
                and started is not None
                and (timeutil.parse(timeutil.now()) - started).total_seconds() > timeout
            ):
                stopping = True
                on_event("timeout", {"batch": batch_id})
                self._stop(batch_id, "timeout")
            delay = min(delay * 1.5, poll_seconds)
        return self.finish(batch_id, result, on_event=on_event, max_attempts=max_attempts)

    @staticmethod
    def _confirm_vanished(ex: Executor, handle: dict[str, Any], result: PollResult) -> PollResult:
        """Requeueing a batch's runs is drastic, so a vanish is believed only when a second look,
        a moment later, agrees (a loaded host, a lagging shared filesystem, a launcher between two
        files); any other answer wins. Unreachable on the second look keeps the first verdict."""
        time.sleep(VANISH_RECHECK_SECONDS)
        try:
            return ex.poll(handle)
        except CosmoskitError:
            return result

    def _stop(self, batch_id: str, reason: str) -> None:
        with self.ledger.transaction() as tx:
            batch = tx.batch(batch_id)
            if batch is None or batch["state"] not in BATCH_ACTIVE:
                return
            tx.update_batch(batch_id, stop_requested=reason)
        self.executor(batch["executor"]).cancel({**batch["handle"], "reason": reason})

    # ------------------------------------------------------------------ finishing
    def finish(
        self, batch_id: str, result: PollResult, *, on_event: Event = _quiet, max_attempts: int = 2
    ) -> dict[str, Outcome]:
        """Fetch what a batch produced and settle every run on its own merits."""
        me = owner.me()
        with self.ledger.transaction() as tx:
            batch = tx.batch(batch_id)
            if batch is None or batch["state"] not in BATCH_ACTIVE:
                return {}
            if (
                batch["state"] == "fetching"
                and owner.alive(batch.get("finisher"))
                and not owner.is_me(batch.get("finisher"))
            ):
                return {}
            batch = tx.update_batch(batch_id, state="fetching", finisher=me)
            for rid in batch["runs"]:
                run = tx.run(rid)
                if run and run["status"] in ("running", "staging"):
                    tx.update_run(rid, status="fetching")
        job = self.job_for(batch)
        ex = self.executor(batch["executor"])
        on_event("fetching", {"batch": batch_id})
        try:
            ex.fetch(
                batch["handle"],
                job,
                progress=lambda label, done, total: on_event(
                    "transfer", {"label": label, "done": done, "total": total}
                ),
            )
        except Exception:
            # A vanished batch's folder may have outlived its process (a failed Slurm node, a host
            # that came back), so its finished lines are fetched when they can be; when they cannot,
            # its runs must still be requeued.
            if result.state != "vanished":
                raise
        log = job.read_text(LOG)
        ending = verdicts.ending_of(result)
        stop = verdicts.stop_reason(batch.get("stop_requested"), job.read_text(STOP_REASON), ending)
        if ending == "vanished":
            # outputs written before it vanished still count
            found = job.operation.collect(job, None, log) if job.local("outputs").exists() else None
            outcomes = verdicts.outcomes_of_vanished([r["id"] for r in job.runs], found)
        else:
            outcomes = job.operation.collect(job, result.exit_code, log)
        end = verdicts.BatchEnd(
            ending=ending,
            stop=stop,
            cancel_runs=frozenset(batch.get("cancel_runs") or []),
            controls=len(set().union(*(job.operation.controls(r) for r in job.runs if r.get("params")))),
            max_attempts=max_attempts,
            timeout_seconds=float(self.settings.get("timeouts.batch_seconds")),
        )
        settled: dict[str, Outcome] = {}
        finished_runs: list[RunRecord] = []
        stamp = timeutil.now()
        with self.ledger.transaction() as tx:
            for k, outcome in enumerate(outcomes):
                run = tx.run(outcome.run_id)
                if run is None:
                    continue  # deleted meanwhile
                folder = run_folder(self.home, run["id"])
                self._fill_run_folder(job, k, run, outcome, log, folder)
                decided = verdicts.verdict(outcome, run.get("attempts", 1), end)
                changes = dict(decided.changes)
                if decided.kind == "completed":
                    changes["outputs"] = {name: str((folder / name).relative_to(self.home)) for name in outcome.files}
                if changes["status"] in RUN_TERMINAL:
                    changes["finished"] = stamp
                if decided.kind == "completed":
                    changes.update(job.operation.completed(tx, cast(RunRecord, {**run, **changes}), outcome))
                run = tx.update_run(run["id"], **changes)
                self._write_snapshot(folder, run)
                settled[run["id"]] = outcome
                if run["status"] in RUN_TERMINAL:
                    finished_runs.append(run)
            ok = sum(1 for o in outcomes if o.ok)
            tx.update_batch(
                batch_id,
                state=verdicts.batch_state(stop, ok, len(outcomes)),
                exit_code=result.exit_code,
                finished=stamp,
                stop_reason=stop or None,
                completed_runs=ok,
                # the launcher's stamps of the model's own time: what `cosmoskit calibrate` fits
                model_started=job.read_text("model_started_at").strip() or None,
                model_exited=job.read_text("model_exited_at").strip() or None,
            )
        on_event("finished", {"batch": batch_id, "completed": ok, "runs": len(outcomes)})
        for run in finished_runs:
            self._notify(run)
        return settled

    def _fill_run_folder(self, job: BatchJob, k: int, run: RunRecord, outcome: Outcome, log: str, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, src in outcome.files.items():
            link_or_copy(Path(src), folder / name)
        for name in ("spec.json", "batch.jsonl", COMMAND_JSON):
            if job.local(name).exists():
                link_or_copy(job.local(name), folder / name)
            else:  # a relaunch's folder holds only what this batch ran, never an earlier attempt's spec
                (folder / name).unlink(missing_ok=True)
        logs = folder / "logs"
        logs.mkdir(exist_ok=True)
        (logs / "batch.log").write_text(log, encoding="utf-8")
        (logs / "run.log").write_text(job.operation.run_log(job, k, log), encoding="utf-8")

    @staticmethod
    def _write_snapshot(folder: Path, run: RunRecord) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "run.json").write_bytes(orjson.dumps(run, option=orjson.OPT_INDENT_2))

    def _notify(self, run: RunRecord) -> None:
        try:
            plugins.pm.hook.run_finished(run=dict(run))
        except Exception as exc:  # a notification must never fail a run
            sys.stderr.write(f"warning: a run_finished hook failed for {run['id']}: {exc}\n")

    # ------------------------------------------------------------------ reattaching
    def adopt_orphans(self, executors: Iterable[str] | None = None) -> list[str]:
        """Take over the unfinished batches whose process died (a killed worker or client, or one killed
        but not yet reaped), on these executors; returns the ids now this process's to settle.

        The claim is one transaction, so of several live processes exactly one adopts each batch."""
        wanted = set(executors) if executors is not None else None
        me = owner.me()
        taken = []
        with self.ledger.transaction() as tx:
            for batch in tx.active_batches():
                if wanted is not None and batch["executor"] not in wanted:
                    continue
                watcher = batch.get("finisher") if batch["state"] == "fetching" else batch.get("owner")
                if owner.is_me(watcher) or owner.alive(watcher):
                    continue
                tx.update_batch(batch["id"], owner=me)
                taken.append(batch["id"])
        return taken

    def settle_orphans(self) -> dict[str, str]:
        """Before showing what runs: batches whose process died are looked at now (finished if their model
        exited, requeued if they vanished), so no command shows `running` for a batch that is over."""
        taken = self.adopt_orphans()
        if not taken:
            return {}
        return self.reconcile(batch_ids=taken, max_attempts=int(self.settings.get("worker.max_attempts")))

    def reconcile(
        self,
        *,
        finish: bool = True,
        on_event: Event = _quiet,
        max_attempts: int = 2,
        only_orphans: bool = True,
        batch_ids: Iterable[str] | None = None,
    ) -> dict[str, str]:
        """Look at every unfinished batch (or these) nobody alive is following: finish the exited, requeue
        the vanished; say which still run."""
        wanted = set(batch_ids) if batch_ids is not None else None
        with self.ledger.read() as tx:
            batches = [b.copy() for b in tx.active_batches() if wanted is None or b["id"] in wanted]
        seen: dict[str, str] = {}
        for batch in batches:
            watcher = batch.get("finisher") if batch["state"] == "fetching" else batch.get("owner")
            if only_orphans and owner.alive(watcher) and not owner.is_me(watcher):
                seen[batch["id"]] = "followed by another process"
                continue
            if batch["state"] == "staged":
                self.unstage(batch["id"], "the process that staged it died")
                seen[batch["id"]] = "requeued (staged, never started)"
                continue
            if batch["state"] == "staging" and not (batch.get("handle") or {}).get("batch_dir"):
                # The ledger may be older than the launch (a restored backup): look where it would run.
                try:
                    found = self._found_launcher(batch)
                except CosmoskitError as exc:  # cannot look: never relaunch what may be running there
                    seen[batch["id"]] = f"unreachable: {exc}"
                    continue
                if found is None:
                    self._abort_launch(batch["id"], CosmoskitError("the launching process died before staging"))
                    seen[batch["id"]] = "requeued (never launched)"
                    continue
                batch = found
            try:
                result = self.executor(batch["executor"]).poll(batch["handle"])
            except CosmoskitError as exc:
                seen[batch["id"]] = f"unreachable: {exc}"
                continue
            if result.state == "vanished":
                result = self._confirm_vanished(self.executor(batch["executor"]), batch["handle"], result)
            if result.state == "running":
                seen[batch["id"]] = "running"
                continue
            if batch["state"] == "staging" and result.state == "vanished":
                self._abort_launch(batch["id"], CosmoskitError("the launching process died before the model started"))
                seen[batch["id"]] = "requeued (never started)"
                continue
            if finish:
                self.finish(batch["id"], result, on_event=on_event, max_attempts=max_attempts)
                seen[batch["id"]] = "finished" if result.state == "exited" else "vanished: unfinished runs requeued"
        return seen

    def _found_launcher(self, batch: BatchRecord) -> BatchRecord | None:
        """A staging batch the ledger holds no handle for whose launcher nevertheless started at its place
        (a ledger restored from a backup older than the launch): recorded as running, so it is followed
        to its end and never launched a second time; None if nothing started there.  Raises
        ``CosmoskitError`` when the place cannot be reached."""
        ex = self.executor(batch["executor"])
        job = self.job_for(batch)
        handle = {
            "executor": ex.label,
            "type": ex.name,
            "batch_dir": ex.remote_dir(job),
            "container": job.container,
            **ex.handle_base(),
        }
        if ex.poll(handle).state == "vanished":
            return None
        with self.ledger.transaction() as tx:
            found = tx.update_batch(batch["id"], handle=handle, log_path=str(job.local(LOG)), state="running")
            for rid in found["runs"]:
                run = tx.run(rid)
                if run is not None and run["status"] == "staging":
                    tx.update_run(rid, status="running")
        return found

    # ------------------------------------------------------------------ cancelling
    def cancel(self, target: str) -> dict[str, Any]:
        """Cancel a run (queued: at once; in a batch: its batch is stopped, the others requeued) or a whole batch."""
        with self.ledger.transaction() as tx:
            if target.startswith("bt_") or (not target.startswith("rs_") and self._is_batch(tx, target)):
                batch = tx.get_batch(target)
                if batch["state"] not in BATCH_ACTIVE:
                    raise CosmoskitError(f"batch {batch['id']} already ended ({batch['state']})")
                if batch["state"] == "staged":  # nothing runs yet: its runs are cancelled at once
                    self._unstage(tx, batch["id"], "cancelled", set(batch["runs"]))
                    return {"id": batch["id"], "batch": batch["id"], "runs": batch["runs"], "stopping": False}
                tx.update_batch(batch["id"], stop_requested="cancelled", cancel_runs=[])
                result = {"id": batch["id"], "batch": batch["id"], "runs": batch["runs"], "stopping": True}
            else:
                run = tx.get_run(target)
                if run["status"] == "queued":
                    tx.update_run(
                        run["id"],
                        status="cancelled",
                        error="cancelled on request",
                        reason="cancelled",
                        finished=timeutil.now(),
                    )
                    return {"id": run["id"], "stopping": False, "finished_run": run}
                if run["status"] not in RUN_ACTIVE:
                    raise CosmoskitError(f"run {run['id']} already ended ({run['status']})")
                batch_id = run.get("batch_id")
                found = tx.batch(batch_id) if batch_id else None
                if found is None or found["state"] not in BATCH_ACTIVE:
                    tx.update_run(
                        run["id"],
                        status="cancelled",
                        error="cancelled on request",
                        reason="cancelled",
                        finished=timeutil.now(),
                    )
                    return {"id": run["id"], "stopping": False}
                batch = found
                if batch["state"] == "staged":  # the others go back to the queue, never having started
                    self._unstage(tx, batch["id"], f"run {run['id']} was cancelled", {run["id"]})
                    return {"id": run["id"], "batch": batch["id"], "stopping": False}
                cancel_runs = sorted(set(batch.get("cancel_runs") or []) | {run["id"]})
                tx.update_batch(batch["id"], stop_requested="cancelled", cancel_runs=cancel_runs)
                result = {"id": run["id"], "batch": batch["id"], "stopping": True}
        self.executor(batch["executor"]).cancel({**batch["handle"], "reason": "cancelled"})
        return result

    # ------------------------------------------------------------------ the queue, for any front end
    def pause(self) -> None:
        """Stop workers from claiming queued runs (running batches go on)."""
        queueops.set_paused(self.ledger, True)

    def resume(self) -> None:
        queueops.set_paused(self.ledger, False)

    def paused(self) -> bool:
        return queueops.is_paused(self.ledger)

    def retry(self, run_refs: list[str]) -> list[RunRecord]:
        """Failed or cancelled runs back in the queue with fresh attempts."""
        return queueops.retry(self.ledger, run_refs)

    def set_priority(self, run_refs: list[str], priority: int) -> list[RunRecord]:
        return queueops.set_priority(self.ledger, run_refs, priority)

    def rate(
        self, run_ref: str, *, stars: int | None = None, note: str | None = None, clear_rating: bool = False
    ) -> RunRecord:
        return queueops.rate(self.ledger, run_ref, stars=stars, note=note, clear_rating=clear_rating)

    def plan(self, strategy: str | None = None) -> queueops.QueuePlan:
        """The batches a worker would launch now, each queued run's estimated start and finish, GPU time."""
        return queueops.plan(self, strategy)

    def delete_preview(self, prompt_refs: list[str] | None) -> queueops.DeletionPreview:
        """What deleting these prompts (None: every prompt) takes with it."""
        return queueops.delete_preview(self, prompt_refs)

    def delete_prompts(self, preview: queueops.DeletionPreview, *, delete_outputs: bool = False) -> None:
        queueops.delete_prompts(self, preview, delete_outputs=delete_outputs)

    def kill_all(self, label: str) -> tuple[list[str], list[str]]:
        """Stop everything at one executor's place; its batches' runs end cancelled.

        Returns (what the executor stopped, the batches cancelled)."""
        ex = self.executor(label)
        with self.ledger.transaction() as tx:
            batches = [b for b in tx.active_batches() if b["executor"] == label]
            for b in batches:
                tx.update_batch(b["id"], stop_requested="cancelled", cancel_runs=[])
        stopped = ex.kill_all()
        for b in batches:
            if not owner.alive(b.get("owner")) or owner.is_me(b.get("owner")):
                self.follow(b["id"], max_attempts=1)
        return stopped, [b["id"] for b in batches]

    @staticmethod
    def _is_batch(tx: Any, text: str) -> bool:
        try:
            tx.resolve_batch(text)
            return True
        except CosmoskitError:
            return False
