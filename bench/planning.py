"""Planning 10,000 queued runs with the `optimal` strategy (target: at most 1 s).

The queue is shaped like a busy studio's: the 15 control combinations of
vis/edge/depth/seg with uneven popularity plus a few keypoint runs (some with all
five controls, which do not fit one 80 GB GPU and run alone), 20, 35 or 50 steps,
videos of one to three 121-frame chunks, a few priorities.  Two figures:

* the strategy alone (`Optimal().plan(items, model)`), the algorithm's cost;
* `cosmoskit._core.planning.plan(engine, runs, prompts, "optimal")`, what `queue plan`
  and the worker call: ledger rows to planner items, the plan, and its validation.
"""
from __future__ import annotations

import itertools
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import report

N = 10_000
FOUR = ("vis", "edge", "depth", "seg")


def realistic_queue(n: int, seed: int = 1) -> list[dict]:
    """Run specs: weights, steps, frames, priority (deterministic for a seed)."""
    rng = random.Random(seed)
    combos = [c for k in range(1, 5) for c in itertools.combinations(FOUR, k)]
    popularity = [6 if len(c) == 1 else 4 if len(c) == 2 else 2 if len(c) == 3 else 3 for c in combos]
    specs = []
    for _ in range(n):
        if rng.random() < 0.03:
            controls = ("keypoint", *rng.sample(FOUR, rng.choice([0, 1, 4])))
        else:
            controls = rng.choices(combos, popularity)[0]
        specs.append({
            "weights": {c: round(1 / len(controls), 3) for c in controls},
            "steps": rng.choices([35, 50, 20], [70, 15, 15])[0],
            "frames": rng.choices([121, 241, 361], [60, 25, 15])[0],
            "priority": rng.choices([0, 1, 5], [85, 10, 5])[0],
        })
    return specs


def items_of(specs: list[dict]):
    from cosmoskit._core.strategy import Item

    return [Item(run_id=f"r{k:05d}", group=("transfer", s["steps"]), controls=frozenset(s["weights"]),
                 chunks=max(1, -(-(s["frames"] - 1) // 120)), steps=s["steps"], priority=s["priority"],
                 created=f"2025-01-01T00:00:{k:05d}") for k, s in enumerate(specs)]


def timed(fn, repeat: int = 5) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times), result


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="cosmoskit-bench-plan-"))
    os.chdir(tmp)
    (tmp / "cosmoskit.yaml").write_text("model: {runtime: emulator}\n")
    from cosmoskit._core import context
    from cosmoskit._core.costmodel import CostModel
    from cosmoskit._core.engine import Engine
    from cosmoskit._core.estimate import summary
    from cosmoskit._core.planning import plan
    from cosmoskit._core.plugins import get_strategy

    settings = context.settings()
    model = CostModel.from_settings(settings)
    specs = realistic_queue(N)
    items = items_of(specs)
    optimal = get_strategy("optimal")()
    median, worst, batches = timed(lambda: optimal.plan(list(items), model))
    strict = get_strategy("strict")().plan(list(items), model)
    totals = summary(batches, model)
    strict_s = sum(model.batch_seconds(b.items, b.controls) for b in strict)

    # end to end: ledger-shaped rows through items_for, the plan and its validation
    engine = Engine(settings, context.ledger())
    op = engine.operation("transfer")
    prompts, runs = {}, []
    for frames in (121, 241, 361):
        prompts[f"p{frames}"] = {"id": f"p{frames}", "frames": frames, "width": 1280, "height": 704, "fps": 24}
    for k, s in enumerate(specs):
        params = {**op.defaults, "weights": s["weights"], "num_steps": s["steps"], "fps": 24}
        runs.append({"id": f"r{k:05d}", "operation": "transfer", "params": params, "prompt_id": f"p{s['frames']}",
                     "priority": s["priority"], "created": f"2025-01-01T00:00:{k:05d}"})
    e2e_median, e2e_worst, e2e = timed(lambda: plan(engine, runs, prompts, "optimal"), repeat=3)
    engine.close()
    assert len(e2e) == len(batches)

    report(f"planning {N:,} queued runs with optimal (2 cores; target <= 1 s)", [
        ("strategy plan()", f"{median:.3f} s median of 5 (worst {worst:.3f} s)"),
        ("planning.plan() end to end", f"{e2e_median:.3f} s median of 3 (worst {e2e_worst:.3f} s)"),
        ("batches", f"{totals['batches']} for {totals['runs']} runs (strict: {len(strict)})"),
        ("GPU time", f"{totals['gpu_seconds'] / 3600:.1f} h; strict {strict_s / 3600:.1f} h; "
                     f"one at a time {totals['one_at_a_time_seconds'] / 3600:.1f} h "
                     f"(speed-up {totals['speedup']:.2f}x)"),
    ])


if __name__ == "__main__":
    sys.exit(main())
