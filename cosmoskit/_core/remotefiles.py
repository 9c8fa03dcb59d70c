"""The files cosmoskit runs on a host: the launcher and the CPU emulator (package ``cosmoskit_remote``)."""
from __future__ import annotations

from cosmoskit_remote import EMULATOR, LAUNCHER, start_command

__all__ = ["EMULATOR", "LAUNCHER", "start_command"]
