"""Ledger scale: adding 10,000 runs in one transaction, and `run list --limit 50 --json` at 10k and 100k runs.

Targets: at most 0.5 s with 10,000 runs and at most 2 s with 100,000 (whole command, start-up included).
The large ledger is realistic: most runs finished (in monthly history files), a few hundred queued.
"""
from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from common import cosmoskit_exe, report, time_command

from cosmoskit._core import ids
from cosmoskit._core.ledger import Ledger


def run_doc(prompt_id: str, created: str, status: str) -> dict:
    return {
        "id": ids.new_id("rs"), "prompt_id": prompt_id, "operation": "transfer", "status": status,
        "params": {"weights": {"vis": 0.25, "edge": 0.25, "depth": 0.25, "seg": 0.25}, "num_steps": 35,
                   "guidance": 7.0, "seed": 1, "sigma_max": 70.0, "blur_strength": "medium",
                   "canny_threshold": "medium", "fps": 24, "num_gpus": 1},
        "priority": 0, "attempts": 1, "batch_id": None, "created": created,
        "outputs": {"output.mp4": "outputs/run_x/output.mp4"} if status == "completed" else {},
        "error": None, "rating": None,
    }


def build(home: Path, n: int) -> float:
    ledger = Ledger(home)
    months = [f"2025-{m:02d}" for m in range(1, 13)] + [f"2026-{m:02d}" for m in range(1, 12)]
    rng = random.Random(1)
    with ledger.transaction() as tx:
        prompt = tx.add_prompt({"name": "bench", "text": "bench prompt", "inputs": {}})
    docs = []
    for i in range(n):
        month = months[min(len(months) - 1, i * len(months) // n)]
        stamp = f"{month}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00.{i % 1000000:06d}+00:00"
        docs.append(run_doc(prompt["id"], stamp, "queued" if i >= n - 300 else "completed"))
    start = time.perf_counter()
    with ledger.transaction() as tx:
        tx.add_runs(docs)
    return time.perf_counter() - start


def main() -> None:
    exe = cosmoskit_exe()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "ten"
        home.mkdir()
        added = build(home, 10_000)
        rows.append(("add 10,000 runs in one transaction", f"{added:.3f} s"))
        t = time_command([exe, "run", "list", "--limit", "50", "--json"], env={"COSMOSKIT_HOME": str(home)})
        rows.append(("run list --limit 50 --json, 10,000 runs", f"{t['median']:.3f} s (target <= 0.5)"))
        big = Path(tmp) / "hundred"
        big.mkdir()
        added = build(big, 100_000)
        rows.append(("add 100,000 runs in one transaction", f"{added:.3f} s"))
        t = time_command([exe, "run", "list", "--limit", "50", "--json"], env={"COSMOSKIT_HOME": str(big)}, repeat=5)
        rows.append(("run list --limit 50 --json, 100,000 runs", f"{t['median']:.3f} s (target <= 2)"))
        t = time_command([exe, "run", "list", "--status", "queued", "--limit", "50", "--json"],
                         env={"COSMOSKIT_HOME": str(big)}, repeat=5)
        rows.append(("run list --status queued (hot queue only), 100,000", f"{t['median']:.3f} s"))
        size = sum(p.stat().st_size for p in (big / "ledger").rglob("*.json"))
        rows.append(("ledger size at 100,000 runs", f"{size / 1e6:.1f} MB"))
    report("ledger (median wall time, start-up included)", rows)


if __name__ == "__main__":
    sys.exit(main())
