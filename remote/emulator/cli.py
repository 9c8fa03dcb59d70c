"""What the newer models' command-line layer (tyro) prints when a command line is wrong."""

from __future__ import annotations

import sys


def stderr(text):
    """One message on stderr, after whatever stdout already holds (the order a reader sees)."""
    sys.stdout.flush()
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def tyro_error(prog, title, lines):
    """A tyro-style box on stderr (the caller then exits 2, as tyro does)."""
    footer = f"For full helptext, run {prog} --help"
    width = max(len(x) for x in [*lines, footer]) + 2
    out = [f"\u256d\u2500 {title} " + "\u2500" * max(0, width - len(title) - 3) + "\u256e"]
    for x in [*lines, "\u2500" * (width - 2), footer]:
        out.append(f"\u2502 {x.ljust(width - 2)} \u2502")
    out.append("\u2570" + "\u2500" * width + "\u256f")
    stderr("\n".join(out))
