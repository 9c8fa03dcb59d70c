"""A 200-run mixed queue on a host with 4 GPUs: how soon it ends against the lower bound, against the
one-batch-at-a-time worker of before, and how busy the slots were; and planning 10,000 runs over 8 slots.

Part 1 (the plan, real cost model): 200 Transfer 1 runs, 15 control combinations x 3 step counts, with
the configured strategy, placed on 4 slots; the makespan against ``lower_bound`` and against the same
batches run one after another on one GPU (the worker before GPU slots).

Part 2 (run for real, CPU EMULATOR standing in for the model): the same mix, scaled down in time, run by
one worker on ``local`` with ``gpus: 4``; the emulator's timing knobs and the cost model agree, so the
plan's makespan is a prediction to compare with.  Busy: the fraction of the 4 slots' time, from the first
model start to the last model exit, during which a model ran (the launcher's stamps).

Part 3: planning 10,000 queued runs over 8 slots (strategy + placement), best of 3.

    python bench/makespan.py [--runs 200] [--skip-run]
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from common import report

CONTROLS = ("vis", "edge", "depth", "seg")
COMBOS = [c for n in (1, 2) for c in itertools.combinations(CONTROLS, n)] + [
    ("vis", "edge", "depth"), ("vis", "depth", "seg"), ("edge", "depth", "seg"), ("vis", "edge", "seg"),
    ("vis", "edge", "depth", "seg")]
STEPS = (10, 20, 35)
assert len(COMBOS) == 15


def mix(n: int) -> list[tuple[tuple[str, ...], int]]:
    """n runs cycling through the 15 control combinations and the 3 step counts."""
    pairs = list(itertools.product(COMBOS, STEPS))
    return [pairs[(k * 7) % len(pairs)] for k in range(n)]


def items(n: int):
    from cosmoskit._core.strategy import Item

    # Transfer 1 keeps runs of different step counts apart (num_steps is a model-level argument)
    return [Item(f"rs_{k:05d}", ("transfer", steps), frozenset(c), 1, steps, 0, f"2026-12-02T00:00:{k:05d}")
            for k, (c, steps) in enumerate(mix(n))]


def plan_part(n: int, slots: int, model) -> dict:
    from cosmoskit._core import plugins
    from cosmoskit._core.makespan import schedule
    from cosmoskit._core.planning import pricing

    runs = items(n)
    batches = plugins.get_strategy("optimal")().plan(runs, model)
    price = pricing(model)
    sched = schedule(batches, price, slots, exact=True)
    one_at_a_time = sum(price.batch(b) for b in batches)
    return {"sched": sched, "serial_batches": one_at_a_time, "batches": len(batches)}


def run_part(n: int, tmp: Path) -> dict:
    """The mix for real on local with 4 GPUs; returns the measured and the predicted makespan, busy share."""
    import yaml

    load, per_control, chunk = 0.6, 0.3, 0.35 * 35 / 10  # emulator: s per chunk at 35 steps
    home = tmp / "proj"
    home.mkdir(parents=True)
    (home / "cosmoskit.yaml").write_text(yaml.safe_dump({
        "default_executor": "local",
        "model": {"runtime": "emulator"},
        "emulator": {"variation": False, "load_seconds": load, "load_seconds_per_control": per_control,
                     "seconds_per_chunk": chunk, "control_factor": 0.35},
        # the cost model told the same numbers (per step = per chunk at 35 steps / 35)
        "batching": {"cost": {"load_base_seconds": load, "load_per_control_seconds": per_control,
                              "chunk_seconds_per_step": chunk / 35, "chunk_control_factor": 0.35}},
        "timeouts": {"poll_seconds": 1.0},
        "executors": {"local": {"type": "local", "gpus": 4}},
    }))
    exe = str(Path(sys.executable).with_name("cosmoskit"))

    def cli(*args: str) -> str:
        proc = subprocess.run([exe, *args], cwd=home, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"cosmoskit {' '.join(args)} failed: {proc.stderr.strip()[-800:]}")
        return proc.stdout

    from cosmoskit._core.media import make_test_video

    scene = tmp / "scene"
    for name in ("color", "depth", "seg"):
        make_test_video(scene / f"{name}.mp4", width=64, height=36, frames=8, fps=24)
    by_combo: dict[tuple[tuple[str, ...], int], int] = {}
    for combo, steps in mix(n):
        by_combo[(combo, steps)] = by_combo.get((combo, steps), 0) + 1
    # runs of one kind differ by prompt (a seed is a model-level argument: it would keep them apart)
    pids = [json.loads(cli("prompt", "create", f"makespan bench {k}", str(scene), "--json"))["id"]
            for k in range(max(by_combo.values()))]
    for (combo, steps), count in by_combo.items():
        weights = ",".join(f"{c}=1" for c in combo)
        cli("transfer", *pids[:count], "--weights", weights, "--num-steps", str(steps), "--seed", "1", "--queue",
            "--yes", "--json")
    predicted = json.loads(cli("queue", "plan", "--json"))
    start = time.perf_counter()
    cli("worker", "--once")
    wall = time.perf_counter() - start
    runs = json.loads(cli("run", "list", "--json", "--limit", str(n + 10)))
    done = sum(1 for r in runs if r["status"] == "completed")

    def stamp(path: Path) -> datetime:
        return datetime.fromisoformat(path.read_text().strip().replace("Z", "+00:00"))

    spans = [(stamp(f / "model_started_at"), stamp(f / "model_exited_at"))
             for f in (home / "batches").glob("bt_*") if (f / "model_exited_at").exists()]
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    span = (last - first).total_seconds()
    busy = sum((e - s).total_seconds() for s, e in spans) / (4 * span)
    return {"wall": wall, "span": span, "busy": busy, "predicted": predicted["makespan_seconds"],
            "bound": predicted["lower_bound_seconds"], "batches": len(spans), "completed": done}


def planning_part(n: int, slots: int) -> tuple[float, int]:
    from cosmoskit._core import plugins
    from cosmoskit._core.costmodel import CostModel
    from cosmoskit._core.makespan import schedule
    from cosmoskit._core.planning import pricing

    model = CostModel()
    runs = items(n)
    best = float("inf")
    count = 0
    for _ in range(3):
        t0 = time.perf_counter()
        batches = plugins.get_strategy("optimal")().plan(runs, model)
        sched = schedule(batches, pricing(model), slots, exact=True)
        best = min(best, time.perf_counter() - t0)
        count = len(sched.placed)
    return best, count


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--skip-run", action="store_true", help="only the plans (parts 1 and 3)")
    args = parser.parse_args()
    from cosmoskit._core.costmodel import CostModel

    tmp = Path(tempfile.mkdtemp(prefix="cosmoskit-bench-makespan-"))
    os.chdir(tmp)
    model = CostModel()
    got = plan_part(args.runs, 4, model)
    s = got["sched"]
    rows = [
        (f"{args.runs} runs (15 control combinations x 3 step counts), optimal, 4 slots", f"{got['batches']} batches"),
        ("  makespan (Transfer 1 cost model defaults)", minutes(s.makespan)),
        ("  lower bound; makespan / bound", f"{minutes(s.lower_bound)}; {s.makespan / s.lower_bound:.3f}x"),
        ("  one batch at a time on one GPU (the worker before slots)",
         f"{minutes(got['serial_batches'])}: {got['serial_batches'] / s.makespan:.2f}x longer"),
        ("  batches added by splitting; GPU time", f"{s.splits}; {minutes(s.gpu_seconds)}"),
    ]
    if not args.skip_run:
        real = run_part(args.runs, tmp)
        rows += [
            ("run for real: CPU emulator, local with gpus: 4", f"{real['batches']} batches, "
                                                              f"{real['completed']}/{args.runs} completed"),
            ("  first model start -> last model exit (measured)", f"{real['span']:.1f} s"),
            ("  plan's makespan (predicted); lower bound", f"{real['predicted']:.1f} s; {real['bound']:.1f} s"),
            ("  measured / lower bound", f"{real['span'] / real['bound']:.3f}x"),
            ("  slot time with a model running", f"{real['busy'] * 100:.1f} %"),
            ("  worker wall time (with its start-up and the last fetch)", f"{real['wall']:.1f} s"),
        ]
    seconds, placed = planning_part(10_000, 8)
    rows.append(("planning 10,000 runs over 8 slots (optimal + placement), best of 3",
                 f"{seconds:.3f} s ({placed} batches)"))
    report("Plans for many GPU slots", rows)


if __name__ == "__main__":
    main()
