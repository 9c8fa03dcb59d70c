"""A third-party cosmoskit plugin, installed for real by the test suite.

It adds one of everything a plugin can add, using only ``cosmoskit.api``: the ``echo``
operation (docs/plugins.md's example), the ``everything`` batching strategy, the ``here``
executor and the ``hello`` command.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from cosmoskit import api


class Echo(api.Operation):
    name = "echo"
    description = "copy the prompt's RGB video (a test operation)"
    batchable = False
    runtime = "plain"  # its command is not a model: nothing wraps it

    def validate(self, params, prompt):
        if prompt is None:
            raise api.CosmoskitError("echo needs a prompt")
        return {}

    def prepare(self, job):
        run = job.runs[0]
        video = job.stage_input(job.prompts[run["prompt_id"]]["inputs"]["rgb"])
        return ["sh", "-c", 'mkdir -p "$(dirname "$2")" && cp "$1" "$2"', "echo", video,
                job.remote("outputs/output.mp4")]

    def collect(self, job, exit_code, log):
        run = job.runs[0]
        out = job.local("outputs/output.mp4")
        if out.exists():
            return [api.Outcome(run["id"], True, {"output.mp4": str(out)})]
        return [api.Outcome(run["id"], False, error=f"cp exited with {exit_code}", reason="crash")]


class Everything(api.BatchingStrategy):
    """One batch per group and control set, as large as the model allows."""

    name = "everything"
    description = "as few batches as possible, ignoring cost"

    def plan(self, items, model):
        groups = {}
        for item in items:
            key = (item.group, item.controls) if item.batchable else (item.group, item.controls, item.run_id)
            groups.setdefault(key, []).append(item)
        batches = []
        for (_, controls, *_), members in groups.items():
            size = max(1, getattr(model, "max_runs", len(members)) or len(members))
            for i in range(0, len(members), size):
                batches.append(api.Batch(members[i:i + size], controls))
        return self.order(batches)


class Here(api.Executor):
    """Runs batches in their own folder on this machine: the whole executor contract in a few lines."""

    name = "here"
    description = "this machine, in the batch folder itself (a third-party executor)"
    options = {"python": api.Field(str, "python3", "Python that runs cosmoskit's tools here")}

    def remote_dir(self, job):
        return str(job.dir)

    def host_facts(self):
        return {"python": self.config["python"], "gpus": "all"}

    def stage(self, job, progress=None):
        for item in job.inputs.values():
            link = job.local(item["name"])
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                os.link(item["path"], link)
        return {"inputs": len(job.inputs)}

    def launch(self, job):
        out = subprocess.run(["bash", "-c", api.start_command(str(job.dir))], capture_output=True, text=True)
        if out.returncode != 0 or not out.stdout.strip().isdigit():
            raise api.CosmoskitError(f"could not start the launcher: {out.stderr.strip()}")
        return {"pid": int(out.stdout)}

    def _pid(self, handle):
        pid_file = Path(handle["batch_dir"], api.PID_FILE)
        return int(pid_file.read_text()) if pid_file.exists() else handle.get("pid")

    def poll(self, handle):
        code = Path(handle["batch_dir"], api.EXIT_CODE)
        if code.exists():
            return api.PollResult("exited", int(code.read_text()))
        pid = self._pid(handle)
        try:
            os.kill(pid, 0)
            return api.PollResult("running")
        except (OSError, TypeError):
            if code.exists():
                return api.PollResult("exited", int(code.read_text()))
            return api.PollResult("vanished", detail=f"launcher {pid} is gone")

    def read_log(self, handle, offset):
        try:
            with open(Path(handle["batch_dir"], api.LOG), "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return b"", offset
        return data, offset + len(data)

    def fetch(self, handle, job, progress=None):
        return None  # the batch ran in job.dir itself

    def cancel(self, handle):
        folder = Path(handle["batch_dir"])
        if not (folder / api.EXIT_CODE).exists():
            (folder / api.STOP_REASON).write_text(handle.get("reason", "cancelled") + "\n")
            try:
                os.kill(self._pid(handle), signal.SIGTERM)
            except (OSError, TypeError):
                pass

    def kill_all(self):
        return []  # batches here are always in the ledger; cancel stops each

    def status(self):
        return api.ExecutorStatus(host="here", reachable=True, gpu_note="no GPUs here (a test executor)")


@api.hookimpl
def register_operations(register):
    register(Echo)


@api.hookimpl
def register_strategies(register):
    register(Everything)


@api.hookimpl
def register_executors(register):
    register(Here)


@api.hookimpl
def register_commands(app):
    import typer

    @app.command("hello")
    def hello(name: str = typer.Argument("world", help="Who to greet.")) -> None:
        """Say hello (from the cosmoskit-hello plugin)."""
        strategies = ", ".join(api.strategy_names())
        typer.echo(f"Hello, {name}! strategies: {strategies}")
