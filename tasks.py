"""Developer tasks (invoke): ``invoke test``, ``invoke lint``, ``invoke bench``."""
from __future__ import annotations

import sys

from invoke import task

PY = sys.executable


@task(help={"k": "only tests matching this expression", "x": "stop at the first failure"})
def test(c, k="", x=False):
    """Run the test suite (the same command CI runs, minus the install)."""
    args = [PY, "-m", "pytest", "-q"]
    if k:
        args += ["-k", repr(k)]
    if x:
        args.append("-x")
    c.run(" ".join(args), pty=False)


@task
def lint(c):
    """Byte-compile everything and run ruff if it is installed."""
    c.run(f"{PY} -m compileall -q cosmoskit plugins remote tests bench tasks.py")
    c.run(f"{PY} -m ruff --version > /dev/null 2>&1 && {PY} -m ruff check cosmoskit plugins remote tests bench || "
          f"echo 'ruff not installed; skipped (pip install ruff)'", warn=True)


BENCHES = ["startup", "ledger", "orchestration"]


@task(help={"name": "one of: " + ", ".join(BENCHES)})
def bench(c, name=""):
    """Run the benchmark scripts; they print figures (no timing is asserted anywhere)."""
    for script in [name] if name else BENCHES:
        c.run(f"{PY} bench/{script}.py")
