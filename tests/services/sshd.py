"""A private OpenSSH server on 127.0.0.1 for tests and benchmarks (tests only: sshd -D -e with a private config).

It needs no system change: its own host key, user key, authorized_keys and config in a folder.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def available() -> bool:
    return os.path.exists(SSHD) and shutil.which("ssh-keygen") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Sshd:
    folder: Path
    port: int
    user: str
    user_key: Path
    host_key: Path
    process: subprocess.Popen | None = None

    @property
    def host_public_key(self) -> str:
        return (self.folder / "host_key.pub").read_text().strip()

    def known_hosts_line(self) -> str:
        kind, blob = self.host_public_key.split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {blob}\n"

    def start(self) -> Sshd:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        log = self.folder / "sshd.log"
        # -D: stay in the foreground so the fixture owns the process; -e: log to stderr (our file)
        with open(log, "ab") as log_file:  # the child has its own copy of the descriptor
            self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.folder / "sshd_config")],
                                            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"sshd exited: {log.read_text()[-500:]}") from None
                time.sleep(0.05)
        raise RuntimeError("sshd did not start")

    def stop(self) -> None:
        """Stop the listener and every session it started (a dropped network, from the client's side).

        OpenSSH puts each connection in a session of its own (setsid), so ending the listener's process
        group leaves established connections alive: their processes are killed one by one."""
        if self.process and self.process.poll() is None:
            sessions = children_of(self.process.pid)
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
            for pid in sessions:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.process = None


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def make(folder: Path, port: int | None = None, path_prefix: str | None = None) -> Sshd:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "user_key"):
        if not (folder / name).exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    shutil.copy(folder / "user_key.pub", folder / "authorized_keys")
    port = port or free_port()
    (folder / "sshd_config").write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {folder}/host_key
PidFile {folder}/sshd.pid
AuthorizedKeysFile {folder}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
MaxSessions 64
MaxStartups 64:30:128
ClientAliveInterval 0
""" + (f"SetEnv PATH={path_prefix}:/usr/local/bin:/usr/bin:/bin\n" if path_prefix else ""))
    import getpass

    return Sshd(folder, port, getpass.getuser(), folder / "user_key", folder / "host_key")
