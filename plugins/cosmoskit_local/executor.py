"""The local executor: the batch folder under ``<home>/batches`` is where the model runs."""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

from cosmoskit.api import (
    EXIT_CODE,
    LOG,
    PID_FILE,
    STOP_REASON,
    BatchJob,
    CosmoskitError,
    Executor,
    ExecutorStatus,
    Field,
    HostJob,
    PollResult,
    Progress,
    gpus_problem,
    model_options,
    sha256_file,
    start_command,
)


def process_alive(pid: int, marker: str) -> bool:
    """Is ``pid`` alive and still the launcher of this batch (not a recycled pid)?"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            if fh.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return False  # exited, waiting to be reaped
    except (OSError, IndexError):
        pass
    return marker in cmdline


class LocalExecutor(Executor):
    name = "local"
    description = "this machine: batch folders under <home>/batches, inputs in <home>/store"
    options: ClassVar[dict[str, Any]] = {
        **model_options(),
        "gpus": Field((str, int, list), "all", "GPUs batches use here, one batch per num_gpus of them: all (as "
                      "nvidia-smi lists them), a count, or indices like 0,1,3", check=gpus_problem),
        "python": Field(str, None, "Python that runs the emulator (default: the one running cosmoskit)", nullable=True),
    }

    @property
    def store(self) -> Path:
        return self.settings.home / "store"

    def remote_dir(self, job: BatchJob) -> str:
        return str(job.dir)

    def handle_base(self) -> dict[str, Any]:
        return {"host": "localhost"}

    def host_facts(self) -> dict[str, str]:
        # pinned batches: the engine names their GPUs
        return {"gpus": "all", "python": self.config.get("python") or sys.executable}

    def model_settings(self) -> dict[str, Any]:
        m = super().model_settings()
        for key in ("checkpoint_dir", "cosmos_repo"):
            m[key] = os.path.expanduser(m[key])
        return m

    # -- staging ------------------------------------------------------------------
    def _store_path(self, sha: str, suffix: str) -> Path:
        return self.store / sha[:2] / f"{sha}{suffix}"

    def stage(self, job: BatchJob, progress: Progress | None = None) -> dict[str, Any]:
        """Put each input in the content-addressed store once (verified), then hard-link it into the batch."""
        added = 0
        for item in job.inputs.values():
            src = Path(item["path"])
            dest = self._store_path(item["sha256"], src.suffix.lower() or ".mp4")
            if not dest.exists():
                if not src.is_file():
                    raise CosmoskitError(f"input video {src} is missing", hint="`cosmoskit verify` lists what moved",
                                         input_problem=True)
                dest.parent.mkdir(parents=True, exist_ok=True)
                _drop_stale_parts(dest)
                tmp = dest.with_name(dest.name + f".{os.getpid()}.part")
                try:
                    shutil.copyfile(src, tmp)
                    if sha256_file(tmp) != item["sha256"]:
                        raise CosmoskitError(f"input video {src} changed since its prompt was made",
                                             hint="make a new prompt for the new video", input_problem=True)
                    os.replace(tmp, dest)
                finally:
                    tmp.unlink(missing_ok=True)  # a full disk or a bad copy leaves nothing behind
                added += item.get("bytes") or dest.stat().st_size
            link = job.local(item["name"])
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                try:
                    os.link(dest, link)
                except OSError:
                    shutil.copyfile(dest, link)
        return {"bytes_stored": added}

    # -- running ------------------------------------------------------------------
    def launch(self, job: BatchJob) -> dict[str, Any]:
        proc = subprocess.run(["bash", "-c", start_command(str(job.dir))],
                              capture_output=True, text=True)
        if proc.returncode != 0 or not proc.stdout.strip().isdigit():
            raise CosmoskitError(f"could not start the launcher: {proc.stderr.strip() or proc.stdout.strip()}")
        return {"pid": int(proc.stdout.strip())}

    def poll(self, handle: dict[str, Any]) -> PollResult:
        folder = Path(handle["batch_dir"])
        code_file = folder / EXIT_CODE
        if code_file.exists():
            return PollResult("exited", _read_int(code_file))
        pid_file = folder / PID_FILE
        pid = _read_int(pid_file) if pid_file.exists() else handle.get("pid")
        if pid and process_alive(pid, "launch.sh"):
            return PollResult("running")
        if code_file.exists():  # it finished between the two looks
            return PollResult("exited", _read_int(code_file))
        return PollResult("vanished", detail=f"launcher pid {pid} is gone and left no exit code")

    def wait(self, handle: dict[str, Any], timeout: float) -> PollResult:
        """Waits on the launcher process itself (a pidfd): its exit is seen the moment it happens."""
        folder = Path(handle["batch_dir"])
        pid_file = folder / PID_FILE
        pid = _read_int(pid_file) if pid_file.exists() else handle.get("pid")
        if (folder / EXIT_CODE).exists() or not pid or not process_alive(pid, "launch.sh"):
            return self.poll(handle)
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # gone meanwhile, or a kernel without pidfds
            return super().wait(handle, timeout)
        try:
            if process_alive(pid, "launch.sh"):  # still the launcher now that we hold it
                select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
        return self.poll(handle)

    def read_log(self, handle: dict[str, Any], offset: int) -> tuple[bytes, int]:
        path = Path(handle["batch_dir"]) / LOG
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return b"", offset
        return data, offset + len(data)

    def fetch(self, handle: dict[str, Any], job: BatchJob, progress: Progress | None = None) -> None:
        return None  # the batch ran in job.dir itself

    def cancel(self, handle: dict[str, Any]) -> None:
        folder = Path(handle["batch_dir"])
        reason = handle.get("reason", "cancelled")
        if not (folder / EXIT_CODE).exists() and not (folder / STOP_REASON).exists():
            (folder / STOP_REASON).write_text(reason + "\n")
        pid_file = folder / PID_FILE
        pid = _read_int(pid_file) if pid_file.exists() else handle.get("pid")
        if pid and process_alive(pid, "launch.sh"):
            os.kill(pid, 15)

    def shell(self, script: str) -> tuple[int, str]:
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout + proc.stderr

    def _launchers(self) -> list[tuple[int, Path]]:
        """Launchers of this project still running here: (pid, batch folder)."""
        found = []
        for pid_file in sorted((self.settings.home / "batches").glob(f"*/{PID_FILE}")):
            folder = pid_file.parent
            pid = _read_int(pid_file)
            if pid and not (folder / EXIT_CODE).exists() and process_alive(pid, "launch.sh"):
                found.append((pid, folder))
        return found

    def kill_all(self) -> list[str]:
        stopped = []
        for pid, folder in self._launchers():
            self.cancel({"batch_dir": str(folder), "pid": pid, "reason": "cancelled"})
            stopped.append(str(folder))
        return stopped

    def status(self) -> ExecutorStatus:
        from cosmoskit_local.gpu import local_status

        status = local_status(self.settings.home)
        status.jobs = [HostJob("launcher", str(pid), detail=str(folder), handle_key="batch_dir",
                               handle_value=str(folder)) for pid, folder in self._launchers()]
        return status


def _drop_stale_parts(dest: Path) -> None:
    """Copies a killed process left half-written (``<entry>.<pid>.part``): nobody will finish them."""
    for part in dest.parent.glob(dest.name + ".*.part"):
        pid = part.name[len(dest.name) + 1 : -len(".part")]
        if pid.isdigit() and not _pid_alive(int(pid)):
            part.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
