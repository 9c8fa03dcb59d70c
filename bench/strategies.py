"""single, strict, mixed and optimal on a realistic mixed queue: model GPU time and emulator makespan.

Part 1 (cost model, default parameters): 200 queued transfer runs spread over the
15 control combinations of vis/edge/depth/seg, three step counts (20, 35, 50) and
videos of one or two 121-frame chunks; each strategy's planned GPU time.

Part 2 (measured): the first MEASURED runs of that queue (kept small so the whole
bench takes a few minutes; the count is printed) on the emulator with simulated
timing, one local executor slot, one ``Worker(...).run(once=True)`` per strategy,
wall time from start to an empty queue.  The emulator sleeps
``load_seconds + load_seconds_per_control * n`` once per batch and
``seconds_per_chunk * steps / 35 * (1 + control_factor * (n - 1))`` per chunk of
each run (docs/emulator.md), set here to the default cost model's own shape
(``emulator.control_factor`` = ``chunk_control_factor``), every time scaled by
SCALE (1 model-second = SCALE wall seconds).  "model" is then the planned GPU time in wall seconds; with one
slot it is also the predicted makespan; the difference to "measured" is
orchestration (staging, process start, ffmpeg, polling), see bench/orchestration.py.
"""
from __future__ import annotations

import itertools
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from common import report

FACTOR = 0.35  # the default cost model's chunk_control_factor; the emulator is given the same shape

N = 200
MEASURED = int(os.environ.get("BENCH_MEASURED_RUNS", "30"))
SCALE = float(os.environ.get("BENCH_SCALE", "0.001"))
FOUR = ("vis", "edge", "depth", "seg")
NAMES = ("single", "strict", "mixed", "optimal")


def mixed_queue(n: int, seed: int = 3) -> list[dict]:
    """Every one of the 15 combinations about equally often, steps 20/35/50, 1 or 2 chunks."""
    rng = random.Random(seed)
    combos = [c for k in range(1, 5) for c in itertools.combinations(FOUR, k)]
    order = [combos[k % len(combos)] for k in range(n)]
    rng.shuffle(order)
    return [{"weights": {c: round(1 / len(cs), 3) for c in cs}, "steps": rng.choice([20, 35, 50]),
             "long": rng.random() < 0.3, "priority": rng.choices([0, 1], [9, 1])[0]} for cs in order]


def model_table(specs: list[dict]) -> list[tuple[str, str]]:
    from cosmoskit._core.costmodel import CostModel
    from cosmoskit._core.estimate import summary
    from cosmoskit._core.plugins import get_strategy
    from cosmoskit._core.strategy import Item

    items = [Item(f"r{k:03d}", ("transfer", s["steps"]), frozenset(s["weights"]), 2 if s["long"] else 1, s["steps"],
                  s["priority"], f"t{k:03d}") for k, s in enumerate(specs)]
    model = CostModel()
    rows = []
    for name in NAMES:
        t = summary(get_strategy(name)().plan(list(items), model), model)
        rows.append((name, f"{t['batches']:>4} batches  {t['gpu_seconds'] / 3600:7.2f} GPU-h  "
                           f"speed-up {t['speedup']:.2f}x over one at a time"))
    return rows


def measure(name: str, specs: list[dict], scenes: dict[str, Path], root: Path) -> tuple[float, float, int]:
    """(model seconds, measured wall seconds, batches launched, run retries) for one strategy in a fresh project."""
    import yaml

    from cosmoskit._core import context
    from cosmoskit._core.costmodel import CostModel
    from cosmoskit._core.engine import Engine
    from cosmoskit._core.planning import plan
    from cosmoskit._core.prompts import new_prompt
    from cosmoskit._core.worker import Worker

    home = root / name
    home.mkdir()
    os.chdir(home)
    config = {
        "default_executor": "local",
        "model": {"runtime": "emulator"},
        "emulator": {"variation": False, "load_seconds": 180.0 * SCALE, "load_seconds_per_control": 60.0 * SCALE,
                     "seconds_per_chunk": 12.7 * 35 * SCALE, "control_factor": FACTOR},
        "timeouts": {"poll_seconds": 0.05},
        "batching": {"cost": {"load_base_seconds": 180.0 * SCALE, "load_per_control_seconds": 60.0 * SCALE,
                              "chunk_seconds_per_step": 12.7 * SCALE, "chunk_control_factor": FACTOR}},
    }
    (home / "cosmoskit.yaml").write_text(yaml.safe_dump(config))
    context.reset()
    settings, ledger = context.settings(), context.ledger()
    with ledger.transaction() as tx:
        prompts = {kind: tx.add_prompt(new_prompt(f"bench {kind}", folder)) for kind, folder in scenes.items()}
    engine = Engine(settings, ledger)
    for s in specs:
        docs = engine.new_runs("transfer", [prompts["long" if s["long"] else "short"]["id"]],
                               {"weights": s["weights"], "num_steps": s["steps"]}, priority=s["priority"])
        engine.queue(docs)
    with ledger.read() as tx:
        runs = [dict(r) for r in tx.active_runs() if r["status"] == "queued"]
        by_id = {p["id"]: tx.prompt(p["id"]) for p in prompts.values()}
    model = CostModel.from_settings(settings)
    predicted = sum(model.batch_seconds(b.items, b.controls) for b in plan(engine, runs, by_id, name))
    engine.close()
    worker = Worker(settings, ledger, strategy=name, log=(print if os.environ.get("BENCH_VERBOSE") else None))
    start = time.perf_counter()
    worker.run(once=True)
    wall = time.perf_counter() - start
    with ledger.read() as tx:
        done = [dict(r) for r in tx.runs()]
    assert {r["status"] for r in done} == {"completed"}, f"{name}: {[r['status'] for r in done]}"
    retried = sum(r["attempts"] - 1 for r in done)
    return predicted, wall, len(worker.launched), retried


def main() -> None:
    specs = mixed_queue(N)
    report(f"cost model, default parameters: {N} queued runs over the 15 combinations of vis/edge/depth/seg, "
           f"steps 20/35/50, 1-2 chunks", model_table(specs))

    root = Path(tempfile.mkdtemp(prefix="cosmoskit-bench-strategies-"))
    from cosmoskit._core.media import make_test_video

    scenes = {"short": root / "scenes" / "short", "long": root / "scenes" / "long"}
    make_test_video(scenes["short"] / "color.mp4", width=64, height=36, frames=8, fps=24)       # 1 chunk
    make_test_video(scenes["long"] / "color.mp4", width=64, height=36, frames=161, fps=24)      # 2 chunks
    subset = specs[:MEASURED]
    rows = []
    for name in NAMES:
        predicted, wall, launched, retried = measure(name, subset, scenes, root)
        rows.append((name, f"{launched:>3} batches  model {predicted:7.1f} s  measured {wall:7.1f} s  "
                           f"(overhead {wall - predicted:+5.1f} s, {(wall - predicted) / max(1, launched):.2f} s/batch"
                           f"{f', {retried} retried' if retried else ''})"))
    report(f"emulator makespan: the first {MEASURED} of those runs, 1 model-second = {SCALE} s, one slot, "
           f"emulator and model both with chunk_control_factor {FACTOR}", rows)


if __name__ == "__main__":
    sys.exit(main())
