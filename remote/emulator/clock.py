"""The emulator's simulated clock: the model's GPU time as deadlines, not as sleeps one after another.

A real model's load and chunk times are the GPU's; the host's CPU load barely changes them.  The
emulator does real CPU work between its simulated waits (probing and computing controls, writing
outputs with ffmpeg), and on a loaded machine that work would add to every simulated duration if each
were a plain ``sleep``.  ``wait(s)`` instead sleeps until the sum of every simulated duration so far
has passed since the first wait, so the work in between is absorbed, as GPU time would hide it, and a
batch's simulated span is what its knobs say (tests/test_calibrate.py fits the knobs back from it).
"""
from __future__ import annotations

import time

_due: float | None = None


def wait(seconds: float) -> None:
    """Sleep until ``seconds`` more of simulated time has passed (since the first wait of this process)."""
    global _due
    now = time.monotonic()
    _due = (now if _due is None else _due) + seconds
    if _due > now:
        time.sleep(_due - now)
