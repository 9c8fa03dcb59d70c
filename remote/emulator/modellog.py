"""Log lines shaped like the newer models' loguru output, sent where upstream sends them.

Transfer 2.5 (cosmos_oss/init.py) and Cosmos 3 (cosmos_framework/inference/common/init.py)
log with loguru to three sinks: stdout and ``<out>/console.log`` (INFO and up, through a
module filter) and ``<out>/debug.log`` (everything).  Both files are opened with mode "w",
so a rerun into the same folder overwrites them.  The module filter matters to a reader:
messages from modules whose dotted name holds "._" (the ``_src`` internals: per-chunk
progress, "GUARDRAIL BLOCKED: …") reach debug.log only.  ``console_visible`` is that
filter, a pure function.
"""

from __future__ import annotations

import fnmatch
import os
import time

from .common import TAG, _out

LEVELS = {"DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def console_visible(module, level, include, exclude):
    """Does upstream's _console_filter let a record of ``module`` at ``level`` reach stdout and console.log?

    Same order as upstream: an include pattern wins, then an exclude pattern drops it.  (The
    CRITICAL special case upstream checks the same lists in the same order, so criticals
    from excluded modules are dropped too.)"""
    if LEVELS[level] < LEVELS["INFO"]:
        return False
    if any(fnmatch.fnmatch(module, p) for p in include):
        return True
    return not any(fnmatch.fnmatch(module, p) for p in exclude)


class ModelLog:
    """``log(level, where, message)`` with ``where = (module, path, line, function)``."""

    def __init__(self, include, exclude, prefix=""):
        self.include, self.exclude, self.prefix = include, exclude, prefix
        self._files = []  # (file, min level, filtered)

    def open_files(self, out_dir, first_lines=()):
        self.close()
        for name, level, filtered in (("console.log", "INFO", True), ("debug.log", "DEBUG", False)):
            # kept open for the whole run (close() closes it); mode "w", as upstream
            f = open(os.path.join(out_dir, name), "w", encoding="utf-8")  # noqa: SIM115
            for line in first_lines:
                f.write(line + "\n")
            f.flush()
            self._files.append((f, LEVELS[level], filtered))

    def close(self):
        for f, _, _ in self._files:
            f.close()
        self._files = []

    def log(self, level, where, message, stdout=True):
        module, path, line, func = where
        text = f"[{time.strftime('%m-%d %H:%M:%S')}|{self.prefix}{level}|{path}:{line}:{func}] {message}"
        visible = console_visible(module, level, self.include, self.exclude)
        if visible and stdout:
            _out(text)
        for f, min_level, filtered in self._files:
            if LEVELS[level] >= min_level and (visible or not filtered):
                f.write(text + "\n")
                f.flush()

    def emu(self, message):
        """The emulator's own progress line: stdout and debug.log (console.log keeps upstream's lines)."""
        _out(f"{TAG} {message}")
        for f, _, filtered in self._files:
            if not filtered:
                f.write(f"{TAG} {message}\n")
                f.flush()

    def info(self, where, message):
        self.log("INFO", where, message)

    def success(self, where, message):
        self.log("SUCCESS", where, message)

    def warning(self, where, message):
        self.log("WARNING", where, message)

    def critical(self, where, message):
        self.log("CRITICAL", where, message)

    def debug(self, where, message):
        self.log("DEBUG", where, message)
