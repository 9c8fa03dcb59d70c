"""Host keys: verified against known_hosts, never added silently; `cosmoskit host trust` records one."""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from cosmoskit.api import CosmoskitError


def host_entry(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts."""
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key: Any) -> str:
    """OpenSSH's SHA256 fingerprint of a paramiko key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def load(path: Path) -> Any:
    import paramiko

    keys = paramiko.HostKeys()
    if path.exists():
        try:
            keys.load(str(path))
        except (OSError, paramiko.SSHException) as exc:
            raise CosmoskitError(f"cannot read known_hosts {path}: {exc}") from exc
    return keys


def scan(host: str, port: int, timeout: float) -> Any:
    """The key the server offers, without authenticating."""
    import socket

    import paramiko

    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise CosmoskitError(f"cannot reach {host}:{port}: {exc.strerror or exc}") from exc
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except paramiko.SSHException as exc:
        raise CosmoskitError(f"{host}:{port} did not complete an SSH handshake: {exc}") from exc
    finally:
        transport.close()


def trust(name: str, host: str, port: int, known_hosts: Path, key: Any, *, replace: bool) -> str:
    """Record ``key`` for the host; a different key already recorded needs ``replace``."""
    keys = load(known_hosts)
    entry = host_entry(host, port)
    current = keys.lookup(entry) or {}
    if key.get_name() in current and current[key.get_name()] == key:
        return "already trusted"
    if current and not replace:
        known = ", ".join(f"{k} {fingerprint(v)}" for k, v in current.items())
        raise CosmoskitError(
            f"{known_hosts} already holds a different key for {entry} ({known}); the host key CHANGED",
            hint=f"if you expected this, run `cosmoskit host trust {name} --replace`",
        )
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    if replace and current:
        # Rewriting is the only way to drop the old key; paramiko keeps every other entry.
        for kind in list(current):
            del keys[entry][kind]
        keys.add(entry, key.get_name(), key)
        keys.save(str(known_hosts))
        return "replaced"
    # Append, so the user's own file keeps its comments and layout.
    with open(known_hosts, "a", encoding="utf-8") as fh:
        if known_hosts.stat().st_size and not known_hosts.read_bytes().endswith(b"\n"):
            fh.write("\n")
        fh.write(f"{entry} {key.get_name()} {key.get_base64()}\n")
    known_hosts.chmod(0o600)
    return "recorded"
