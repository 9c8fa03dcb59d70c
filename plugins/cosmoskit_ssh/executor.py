"""The SSH executor: a GPU host reached with paramiko; inputs in a content-addressed store there."""
from __future__ import annotations

import getpass
import hashlib
import io
import os
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from cosmoskit.api import (
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
    parse_nvidia_smi,
    positive,
    start_command,
)
from cosmoskit_ssh import remote

CHUNK = 1 << 20
PARALLEL_UPLOADS = 3  # several files at once, each on its own SFTP channel


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


class SSHExecutor(Executor):
    name = "ssh"
    description = "a GPU host over SSH: content-addressed staging, detached launcher, Docker/direct/emulator"
    options: ClassVar[dict[str, Any]] = {
        "host": Field(str, None, "host name or address", required=True),
        "port": Field(int, 22, "SSH port", check=positive),
        "user": Field(str, None, "login user (default: yours)", nullable=True),
        "key_file": Field(str, None, "private key; null = the SSH agent and ~/.ssh/id_*", nullable=True),
        "known_hosts": Field(str, "~/.ssh/known_hosts",
                             "host keys are checked here; `cosmoskit host trust` records one"),
        "remote_dir": Field(str, "~/cosmoskit", "cosmoskit's folder on the host: store/, batches/, bin/"),
        "python": Field(str, "python3", "Python on the host that runs the emulator"),
        "gpus": Field((str, int, list), "all", "GPUs batches use here, one batch per num_gpus of them: all (as "
                      "nvidia-smi lists them), a count, or indices like 0,1,3", check=gpus_problem),
        "keepalive_seconds": Field(float, 15.0, "SSH keepalive interval", check=positive),
        **model_options(),
    }

    def __init__(self, label: str, config: dict[str, Any], settings: Any) -> None:
        super().__init__(label, config, settings)
        self._conn: Any = None
        self._home: str | None = None
        self._lock = threading.Lock()
        self.sent_bytes = 0

    # -- connection ---------------------------------------------------------------------------
    @property
    def conn(self) -> Any:
        with self._lock:
            if self._conn is None:
                from cosmoskit_ssh.connection import Connection

                self._conn = Connection(
                    self.label, self.config["host"], self.config["port"], self.config.get("user") or getpass.getuser(),
                    os.path.expanduser(self.config["key_file"]) if self.config.get("key_file") else None,
                    Path(os.path.expanduser(self.config["known_hosts"])),
                    float(self.settings.get("timeouts.connect_seconds")), self.config["keepalive_seconds"],
                )
            return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def expand_home(self, path: str) -> str:
        return self._expand(path)

    def _expand(self, path: str) -> str:
        if path == "~" or path.startswith("~/"):
            if self._home is None:
                self._home = self.conn.run('printf %s "$HOME"', what="find the remote home").text
            return self._home + path[1:]
        return path

    @property
    def root(self) -> str:
        return self._expand(self.config["remote_dir"]).rstrip("/")

    @property
    def store(self) -> str:
        return f"{self.root}/store"

    def handle_base(self) -> dict[str, Any]:
        return {"host": self.config["host"], "port": self.config["port"]}

    def remote_dir(self, job: BatchJob) -> str:
        return f"{self.root}/batches/{job.id}"

    def model_settings(self) -> dict[str, Any]:
        m = super().model_settings()
        m["checkpoint_dir"] = self._expand(m["checkpoint_dir"])
        m["cosmos_repo"] = self._expand(m["cosmos_repo"])
        return m

    def tool_path(self, local: Path) -> str:
        """Tools live in bin/ named by their own hash, so a host holds each version once."""
        digest = _sha256(local)[:12]
        return f"{self.root}/bin/{local.stem}-{digest}{local.suffix}"

    def host_facts(self) -> dict[str, str]:
        return {"gpus": "all", "python": self.config["python"]}  # pinned batches: the engine names their GPUs

    # -- staging ----------------------------------------------------------------------------------
    def stage(self, job: BatchJob, progress: Progress | None = None) -> dict[str, Any]:
        figures = {"bytes_sent": 0, "inputs_sent": 0, "inputs_reused": 0, "bytes_resumed": 0}
        entries = {sha: f"{sha[:2]}/{sha}{Path(item['path']).suffix.lower() or '.mp4'}"
                   for sha, item in job.inputs.items()}
        # one round trip: make the folders, report on the store, and look for the tools the batch needs
        dirs = sorted({f"{self.store}/{n.split('/')[0]}" for n in entries.values()} | {f"{self.root}/bin"})
        tools = sorted(job.tools.items())
        script = (f"mkdir -p {' '.join(remote.q(d) for d in dirs)} && "
                  f"{{ {remote.store_report(self.store, list(entries.values()))}; }}"
                  + "".join(f"; [ -f {remote.q(there)} ] && echo @@tool {remote.q(there)}" for _, there in tools)
                  + "; true")
        text = self.conn.run(script, what="look at the store").text
        report = self._parse_report(text)
        present = {line[len("@@tool "):] for line in text.splitlines() if line.startswith("@@tool ")}
        missing_tools = [(Path(here), there) for here, there in tools if there not in present]
        to_send: list[tuple[str, dict[str, Any], str]] = []
        for sha, name in entries.items():
            size, mtime, marker, _part = report.get(name, ("-", "-", "-", "-"))
            item = job.inputs[sha]
            local = Path(item["path"])
            if size != "-":
                if marker == f"{size} {mtime}" and int(size) == (item.get("bytes") or int(size)):
                    figures["inputs_reused"] += 1
                    continue
                # changed since verified (or never verified): hash it there, replace it if corrupt
                verdict = self.conn.run(remote.verify_existing(self.store, name, sha),
                                        what="verify a stored input").text
                if verdict.startswith("ok"):
                    figures["inputs_reused"] += 1
                    continue
            if not local.is_file():
                raise CosmoskitError(f"input video {local} is missing", hint="`cosmoskit verify` lists what moved",
                                     input_problem=True)
            to_send.append((sha, item, name))
        total = sum(Path(i["path"]).stat().st_size for _, i, _ in to_send)
        done = [0]
        lock = threading.Lock()

        def tick(n: int) -> None:
            with lock:
                done[0] += n
                if progress:
                    progress("inputs", done[0], total)

        def send(entry: tuple[str, dict[str, Any], str]) -> tuple[int, int]:
            sha, item, name = entry
            return self._upload_verified(Path(item["path"]), sha, name, int(report.get(name, ("-",) * 4)[3]
                                         if report.get(name, ("-",) * 4)[3] != "-" else 0), tick)

        if to_send:
            with ThreadPoolExecutor(max_workers=min(PARALLEL_UPLOADS, len(to_send))) as pool:
                for sent, resumed in pool.map(send, to_send):
                    figures["bytes_sent"] += sent
                    figures["bytes_resumed"] += resumed
                    figures["inputs_sent"] += 1
        for here, there in missing_tools:
            self._install_tool(here, there)
        # the batch's own small files and the input links, in one round trip
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path in sorted(job.dir.iterdir()):
                if path.is_file():
                    tar.add(path, arcname=path.name)
        remote_dir = self.remote_dir(job)
        pairs = [(entries[sha], item["name"]) for sha, item in job.inputs.items()]
        self.conn.run(remote.unpack(remote_dir) + " && " + remote.link_inputs(self.store, remote_dir, pairs),
                      stdin=buf.getvalue(), what="unpack the batch folder")
        self.sent_bytes += figures["bytes_sent"]
        return figures

    @staticmethod
    def _parse_report(out: str) -> dict[str, tuple[str, str, str, str]]:
        report: dict[str, tuple[str, str, str, str]] = {}
        for line in out.splitlines():
            parts = line.split(" ", 1)
            if len(parts) < 2 or line.startswith("@@"):
                continue
            name, rest = parts
            fields = rest.split(" ")
            size, mtime = fields[0], fields[1]
            part = fields[-1]
            marker = " ".join(fields[2:-1]) or "-"
            report[name] = (size, mtime, marker, part)
        return report

    def _upload_verified(self, local: Path, sha: str, name: str, part_size: int, tick: Any) -> tuple[int, int]:
        """Upload to ``name.part`` (resuming a partial one), verify it, then install it in the store.

        A whole upload in one stream is verified by the transport itself (every SSH packet is
        authenticated, AES-GCM or HMAC) plus the remote writer's exit status and the size it
        wrote; a part joined from two sessions is verified by its SHA-256 on the host.  A part
        that fails is sent again from the start, once.
        """
        size = local.stat().st_size
        for _attempt in (1, 2):
            offset = part_size if 0 < part_size <= size else 0
            if offset:
                tick(offset)
            sent, written = self._send(local, f"{self.store}/{name}.part", offset, tick)
            if offset or written != size:
                verdict = self.conn.run(remote.verify_and_install(self.store, name, sha), what="verify an upload").text
            else:
                verdict = self.conn.run(remote.install(self.store, name), what="install an upload").text
            if verdict.startswith("ok"):
                return sent, offset
            part_size = 0
        raise CosmoskitError(f"{self.label}: {local} arrived corrupted twice (sha256 mismatch)")

    def _send(self, local: Path, remote_path: str, offset: int, tick: Any) -> tuple[int, int]:
        return self.conn.send_file(local, remote_path, offset, tick)

    def _install_tool(self, local: Path, remote_path: str) -> None:
        tmp = remote_path + ".part"
        self._send(local, tmp, 0, lambda n: None)
        self.conn.run(["mv", "-f", tmp, remote_path], what=f"install {local.name}")

    # -- running ----------------------------------------------------------------------------------
    def launch(self, job: BatchJob) -> dict[str, Any]:
        out = self.conn.run(start_command(self.remote_dir(job)), what="start the launcher").text.strip()
        if not out.isdigit():
            raise CosmoskitError(f"{self.label}: could not start the launcher: {out!r}")
        return {"pid": int(out)}

    def poll(self, handle: dict[str, Any]) -> PollResult:
        out = self.conn.run(remote.poll(handle["batch_dir"]), what="poll the batch").text.split()
        return self._poll_result(out, handle)

    def _poll_result(self, out: list[str], handle: dict[str, Any]) -> PollResult:
        if out and out[0] == "exited":
            return PollResult("exited", int(out[1]) if len(out) > 1 and out[1].lstrip("-").isdigit() else None)
        if out and out[0] == "running":
            return PollResult("running")
        return PollResult("vanished", detail=f"no launcher and no exit code in {handle['batch_dir']} on {self.label}")

    def wait(self, handle: dict[str, Any], timeout: float) -> PollResult:
        """One command that waits on the host: the exit is seen there within 50 ms, and answered at once."""
        out = self.conn.run(remote.wait(handle["batch_dir"], timeout, handle.get("pid")), what="wait for the batch",
                            timeout=timeout + 120).text.split()
        return self._poll_result(out, handle)

    def read_log(self, handle: dict[str, Any], offset: int) -> tuple[bytes, int]:
        data = self.conn.read_file(f"{handle['batch_dir']}/batch.log", offset)
        return data, offset + len(data)

    def fetch(self, handle: dict[str, Any], job: BatchJob, progress: Progress | None = None) -> None:
        """Outputs, the full log and the exit code in one tar stream (safe extraction: no path escapes)."""
        job.dir.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        got = [0]

        def sink(data: bytes) -> None:
            buf.write(data)
            got[0] += len(data)
            if progress:
                progress("outputs", got[0], 0)

        self.conn.stream(remote.pack_results(handle["batch_dir"]), sink, what="fetch the outputs")
        buf.seek(0)
        if got[0]:
            with tarfile.open(fileobj=buf, mode="r:") as tar:
                tar.extractall(job.dir, filter="data")

    def cancel(self, handle: dict[str, Any]) -> None:
        m = self.model_settings()
        docker = m["docker_command"] if m.get("runtime") == "docker" else None
        self.conn.run(remote.cancel(handle["batch_dir"], handle.get("reason", "cancelled"), docker,
                                    handle.get("container")), what="stop the batch")

    def shell(self, script: str) -> tuple[int, str]:
        result = self.conn.run(script, what="check the host", check=False)
        return result.code, result.text

    # -- looking -----------------------------------------------------------------------------------
    def status(self) -> ExecutorStatus:
        out = ExecutorStatus(host=f"{self.config['host']}:{self.config['port']}", reachable=False)
        try:
            # status answers now: one quick retry, not the minute a running batch gets
            self.conn.retrying(lambda: self.conn.client(), "connect", patience=1.0)
            docker = Executor.model_settings(self)["docker_command"]
            text = self.conn.run(remote.status(self.root, docker), what="read the host's status", check=False,
                                 patience=1.0).text
        except CosmoskitError as exc:
            out.error = str(exc)
            return out
        out.reachable = True
        sections = remote.sections(text)
        gpus = sections.get("gpus", [])
        if gpus == ["no-nvidia-smi"]:
            out.gpu_note = "no nvidia-smi on the host"
        else:
            out.gpus = parse_nvidia_smi("\n".join(gpus))
        containers = sections.get("containers", [])
        if containers and ("docker-failed" in containers[-1] or "not found" in containers[0]
                           or "Cannot connect" in containers[0]):
            out.lines.append(f"docker: {containers[0][:200]}")
        else:
            for c in containers:
                if c.strip():
                    name, image, age = [*c.split("\t"), "", ""][:3]
                    out.jobs.append(HostJob("container", name, detail=f"{image}, {age}", handle_key="container",
                                            handle_value=name))
        disk = (sections.get("disk") or [""])[0].split()
        if len(disk) >= 4 and disk[3].isdigit():
            out.disk_free_bytes = int(disk[3]) * 1024
        for line in sections.get("launchers", []):
            if line.strip():
                pid, _, folder = line.partition(" ")
                out.jobs.append(HostJob("launcher", pid, detail=folder, handle_key="batch_dir", handle_value=folder))
        return out

    def kill_all(self) -> list[str]:
        """Stop every cosmoskit batch and cosmos_* container on this host (``cosmoskit kill --host``)."""
        status = self.status()
        if not status.reachable:
            raise CosmoskitError(status.error or f"{self.label} is unreachable")
        stopped = []
        for job in status.jobs:
            if job.kind == "launcher":
                self.cancel({"batch_dir": job.handle_value, "reason": "cancelled"})
                stopped.append(job.handle_value)
        m = self.model_settings()
        for job in status.jobs:
            if job.kind == "container":
                self.conn.run(f"{m['docker_command']} kill {remote.q(job.id)} >/dev/null 2>&1; true",
                              what="kill a container")
                stopped.append(job.id)
        return stopped
