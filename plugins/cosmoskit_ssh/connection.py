"""One SSH connection per host per process, reused for everything, with keepalives and reconnects."""
from __future__ import annotations

import logging
import shlex
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cosmoskit.api import CosmoskitError
from cosmoskit_ssh.hostkeys import fingerprint, host_entry

T = TypeVar("T")

# paramiko's transport thread logs what it sees going wrong ("Socket exception: Bad file descriptor (9)")
# through logging; with no handler Python prints it raw on stderr, before and beside our one-line error.
# Every failure reaches the user through the connection's own error instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

# AES-GCM first: about 1.3x the throughput of paramiko's default aes128-ctr on bulk uploads
# (docs/dependencies.md, "paramiko"); the rest stay available for servers without it.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr")


@dataclass
class Result:
    code: int
    out: bytes
    err: bytes

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace")

    def checked(self, host: str, what: str) -> Result:
        """This result, or one line naming the host, the command, its exit code and its last stderr line."""
        if self.code != 0:
            message = self.err.decode("utf-8", "replace").strip().splitlines()
            raise CosmoskitError(
                f"{host}: {what} failed (exit {self.code}): {message[-1] if message else 'no message'}"
            )
        return self


def _transport_factory(sock: Any, **kw: Any) -> Any:
    import paramiko

    class FastTransport(paramiko.Transport):
        # a private attribute of paramiko's, not in its type stubs
        _preferred_ciphers = PREFERRED_CIPHERS + tuple(c for c in paramiko.Transport._preferred_ciphers  # type: ignore[attr-defined]
                                                       if c not in PREFERRED_CIPHERS)

    return FastTransport(sock, **kw)


class Connection:
    """A lazily opened, shared paramiko client.  Safe to use from several threads."""

    def __init__(self, name: str, host: str, port: int, user: str | None, key_file: str | None,
                 known_hosts: Path, connect_timeout: float, keepalive: float = 15.0,
                 retry_seconds: float = 60.0) -> None:
        self.name, self.host, self.port, self.user = name, host, port, user
        self.key_file = key_file
        self.known_hosts = known_hosts
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.retry_seconds = retry_seconds
        self._client: Any = None
        self._lock = threading.RLock()
        self._local = threading.local()
        self._generation = 0
        self.reconnects = 0

    # -- connecting --------------------------------------------------------------------
    def _connect(self) -> Any:
        import paramiko

        client = paramiko.SSHClient()
        if self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        # Small SFTP requests stall without it (docs/dependencies.md, "paramiko").
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            client.connect(
                self.host, port=self.port, username=self.user, key_filename=self.key_file,
                allow_agent=self.key_file is None, look_for_keys=self.key_file is None,
                timeout=self.connect_timeout, banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout, sock=sock, transport_factory=_transport_factory,
            )
        except paramiko.BadHostKeyException as exc:
            sock.close()
            raise CosmoskitError(
                f"{self.name}: the host key of {host_entry(self.host, self.port)} CHANGED (now "
                f"{exc.key.get_name()} {fingerprint(exc.key)}); refusing to connect",
                hint=f"check with the host's owner, then `cosmoskit host trust {self.name} --replace`",
            ) from exc
        except paramiko.SSHException as exc:
            sock.close()
            if "not found in known_hosts" in str(exc):
                raise CosmoskitError(
                    f"{self.name}: the host key of {host_entry(self.host, self.port)} is not in {self.known_hosts}",
                    hint=f"`cosmoskit host trust {self.name}` shows its fingerprint and records it",
                ) from exc
            if isinstance(exc, paramiko.AuthenticationException):
                raise CosmoskitError(
                    f"{self.name}: authentication as {self.user} failed ({exc})",
                    hint="check key_file, or that your SSH agent holds the key",
                ) from exc
            raise
        transport = client.get_transport()
        assert transport is not None  # connected just above
        transport.set_keepalive(int(self.keepalive))
        return client

    def client(self) -> Any:
        with self._lock:
            transport = self._client.get_transport() if self._client else None
            if transport is None or not transport.is_active():
                if self._client is not None:
                    self._drop()
                self._client = self._connect()
                self._generation += 1
            return self._client

    def _drop(self) -> None:
        try:
            self._client.close()
        except Exception:
            pass
        self._client = None

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._drop()

    # -- retrying ------------------------------------------------------------------------
    def retrying(self, fn: Callable[[], T], what: str, patience: float | None = None) -> T:
        """Run ``fn``; if the link drops, reconnect with backoff and run it again (fn must be idempotent)."""
        import paramiko

        delay, deadline = 0.5, time.monotonic() + (self.retry_seconds if patience is None else patience)
        while True:
            try:
                return fn()
            except CosmoskitError:
                raise
            except (TimeoutError, paramiko.SSHException, EOFError, OSError) as exc:
                with self._lock:
                    if self._client is not None:
                        self._drop()
                if time.monotonic() + delay > deadline:
                    raise CosmoskitError(
                        f"{self.name}: {what} failed: cannot reach {self.host}:{self.port} "
                        f"({exc.__class__.__name__}: {exc})",
                        hint="the batch keeps running on the host; `cosmoskit attach` reattaches later",
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
                self.reconnects += 1

    # -- running commands ----------------------------------------------------------------
    def run(self, command: list[str] | str, *, stdin: bytes | None = None, timeout: float | None = 120,
            check: bool = True, what: str | None = None, patience: float | None = None) -> Result:
        """Run a command (an argument list is quoted for the remote shell; a string is a script we built)."""
        line = shlex.join(command) if isinstance(command, list) else command

        def once() -> Result:
            chan = self.client().get_transport().open_session(timeout=self.connect_timeout)
            chan.settimeout(timeout)
            chan.exec_command(line)
            if stdin is not None:
                chan.sendall(stdin)
            chan.shutdown_write()
            # Our commands write little to stderr, so reading stdout to EOF first cannot fill the window.
            out, err = bytearray(), bytearray()
            while data := chan.recv(1 << 20):
                out += data
            while data := chan.recv_stderr(1 << 16):
                err += data
            code = chan.recv_exit_status()
            chan.close()
            return Result(code, bytes(out), bytes(err))

        result = self.retrying(once, what or line[:60], patience)
        return result.checked(self.name, what or "remote command") if check else result

    def stream(self, command: str, sink: Callable[[bytes], None], *, what: str) -> int:
        """Run a command and hand its stdout to ``sink`` piece by piece (large downloads)."""
        def once() -> int:
            chan = self.client().get_transport().open_session(timeout=self.connect_timeout)
            chan.settimeout(300)
            chan.exec_command(command)
            chan.shutdown_write()
            while True:
                data = chan.recv(1 << 20)
                if not data:
                    break
                sink(data)
            code = chan.recv_exit_status()
            chan.close()
            return code

        return self.retrying(once, what)

    def send_file(self, local: Path, remote_path: str, offset: int, tick: Callable[[int], None]) -> tuple[int, int]:
        """Stream a file (from ``offset``) into ``cat`` on the host: as fast as scp here, unlike SFTP's
        32 KiB requests; returns (bytes sent, size of the remote file afterwards)."""
        q = shlex.quote
        command = f"cat {'>>' if offset else '>'} {q(remote_path)} && stat -c %s {q(remote_path)}"

        def once() -> tuple[int, int]:
            chan = self.client().get_transport().open_session(timeout=self.connect_timeout)
            chan.settimeout(300)
            chan.exec_command(command)
            sent = 0
            with open(local, "rb") as src:
                src.seek(offset)
                while block := src.read(1 << 20):
                    chan.sendall(block)
                    sent += len(block)
                    tick(len(block))
            chan.shutdown_write()
            out = bytearray()
            while data := chan.recv(4096):
                out += data
            code = chan.recv_exit_status()
            chan.close()
            if code != 0:
                raise CosmoskitError(f"{self.name}: writing {remote_path} failed (exit {code}); is the disk full?")
            return sent, int(out.decode().strip() or -1)

        return self.retrying(once, f"upload {local.name}")

    def read_file(self, path: str, offset: int) -> bytes:
        """Bytes of a remote file from ``offset`` (empty if it does not exist yet)."""
        def once() -> bytes:
            sftp = self.sftp()
            try:
                with sftp.open(path, "rb") as fh:
                    fh.seek(offset)
                    return fh.read()
            except FileNotFoundError:
                return b""

        return self.retrying(once, f"read {path}")

    def sftp(self) -> Any:
        """An SFTP session for this thread (paramiko's SFTPClient must not be shared between threads)."""
        client = self.client()
        cached = getattr(self._local, "sftp", None)
        if cached is not None and getattr(self._local, "generation", None) == self._generation:
            return cached
        sftp = client.open_sftp()
        self._local.sftp, self._local.generation = sftp, self._generation
        return sftp
