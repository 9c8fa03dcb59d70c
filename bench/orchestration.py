"""Orchestration overhead with the emulator at zero compute, local executor.

For batches of 1, 10 and 100 runs: wall time from "launch" to every run settled in its
folder, and a least-squares fit time = per_batch + per_run * n.
Target: at most 0.5 s per batch plus 0.05 s per run.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import report


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="cosmoskit-bench-"))
    os.chdir(tmp)
    (tmp / "cosmoskit.yaml").write_text("model: {runtime: emulator}\nemulator: {variation: false}\n"
                                        "timeouts: {poll_seconds: 0.1}\n")
    from cosmoskit._core import context
    from cosmoskit._core.engine import Engine
    from cosmoskit._core.foreground import run_now
    from cosmoskit._core.media import make_test_video
    from cosmoskit._core.prompts import new_prompt

    scene = tmp / "scene"
    make_test_video(scene / "color.mp4", width=64, height=36, frames=8, fps=24)
    make_test_video(scene / "depth.mp4", width=64, height=36, frames=8, fps=24, source="color=c=gray")
    settings, ledger = context.settings(), context.ledger()
    with ledger.transaction() as tx:
        prompt = tx.add_prompt(new_prompt("bench scene", scene))
    engine = Engine(settings, ledger)
    rows, points = [], []
    for n in (1, 10, 100):
        samples = []
        for _ in range(3 if n < 100 else 2):
            docs = engine.new_runs("transfer", [prompt["id"]] * n, {"weights": "vis=0.5,depth=0.5"})
            start = time.perf_counter()
            runs = run_now(engine, docs, quiet=True)
            samples.append(time.perf_counter() - start)
            assert all(r["status"] == "completed" for r in runs), [r["error"] for r in runs
                                                                   if r["status"] != "completed"]
        t = statistics.median(samples)
        points.append((n, t))
        rows.append((f"batch of {n:>3} runs", f"{t:.3f} s  ({t / n:.4f} s per run)"))
    engine.close()
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)
    rows.append(("fit", f"{my - slope * mx:.3f} s per batch + {slope:.4f} s per run (target 0.5 + 0.05)"))
    report("orchestration overhead, emulator at zero compute (median wall time)", rows)


if __name__ == "__main__":
    sys.exit(main())
