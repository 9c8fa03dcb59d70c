"""Files that run on the GPU host: ``launch.sh`` and the CPU emulator of the model.

Shipped inside the cosmoskit wheel (as package ``cosmoskit_remote``) so an
installed cosmoskit can copy them to a host.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
LAUNCHER = ROOT / "launch.sh"
EMULATOR_SCRIPT = ROOT / "cosmos_emulator.py"  # runs the package by path (source tree, installed wheel)
EMULATOR_PACKAGE = ROOT / "emulator"  # bundled into one file for hosts by cosmoskit._core.remotefiles


def start_command(batch_dir: str, launcher: str = "launch.sh") -> str:
    """The shell line that starts the launcher detached and prints its pid (same for local and SSH hosts).

    It returns only once the launcher has written ``launcher.pid`` (or has already ended): until
    then the pid printed belongs to a process still passing through ``setsid`` and ``nohup``, whose
    /proc cmdline is empty for an instant at each exec, and a poll in that instant would take a
    starting batch for a vanished one."""
    import shlex

    d = shlex.quote(batch_dir)
    # Only the launcher itself goes to the background, with every stream detached, so the
    # caller's pipes close at once and $! is the launcher's pid.
    return (f"setsid nohup bash {d}/{shlex.quote(launcher)} {d} < /dev/null > /dev/null 2>&1 & pid=$!; "
            f"for _ in $(seq 200); do [ -s {d}/launcher.pid ] || [ -f {d}/exit_code ] || ! kill -0 $pid 2> /dev/null "
            "&& break; sleep 0.05; done; echo $pid")
