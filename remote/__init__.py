"""Files that run on the GPU host: ``launch.sh`` and the CPU emulator of the model.

Shipped inside the cosmoskit wheel (as package ``cosmoskit_remote``) so an
installed cosmoskit can copy them to a host.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
LAUNCHER = ROOT / "launch.sh"
EMULATOR = ROOT / "cosmos_emulator.py"
