"""Files that run on the GPU host: ``launch.sh`` and the CPU emulator of the model.

Shipped inside the cosmoskit wheel (as package ``cosmoskit_remote``) so an
installed cosmoskit can copy them to a host.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
LAUNCHER = ROOT / "launch.sh"
EMULATOR = ROOT / "cosmos_emulator.py"


def start_command(batch_dir: str, launcher: str = "launch.sh") -> str:
    """The shell line that starts the launcher detached and prints its pid (same for local and SSH hosts)."""
    import shlex

    d = shlex.quote(batch_dir)
    # Only the launcher itself goes to the background, with every stream detached, so the
    # caller's pipes close at once and $! is the launcher's pid.
    return f"setsid nohup bash {d}/{shlex.quote(launcher)} {d} < /dev/null > /dev/null 2>&1 & echo $!"
