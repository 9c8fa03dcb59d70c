"""`cosmoskit --help` wall time (target: at most 0.25 s on the 2-core reference machine)."""
from __future__ import annotations

import sys

from common import cosmoskit_exe, report, time_command

exe = cosmoskit_exe()
bare = time_command([sys.executable, "-c",
                     "import typer; app = typer.Typer(); app.command()(lambda: None); app(['--help'])"], repeat=7)
ours = time_command([exe, "--help"], repeat=11)
version = time_command([exe, "--version"], repeat=11)
report("start-up (median of runs, seconds)", [
    ("bare typer app --help", f"{bare['median']:.3f}"),
    ("cosmoskit --help", f"{ours['median']:.3f}  (min {ours['min']:.3f}, max {ours['max']:.3f}; target <= 0.25)"),
    ("cosmoskit --version", f"{version['median']:.3f}"),
])
