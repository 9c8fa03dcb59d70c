"""50 batches of zero-compute emulator runs through a real single-node Slurm (started here):
submission-to-completion overhead per batch, as the worker sees it."""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import report

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from services import slurm as slurm_mod

BATCHES = int(os.environ.get("BENCH_SLURM_BATCHES", "50"))


def main() -> None:
    if not slurm_mod.available():
        raise SystemExit("needs slurm-wlm and munge, as root")
    tmp = Path(tempfile.mkdtemp(prefix="cosmoskit-bench-slurm-"))
    cluster = slurm_mod.start(tmp / "slurm")
    os.chdir(tmp)
    (tmp / "cosmoskit.yaml").write_text(f"""\
default_executor: cluster
model: {{runtime: emulator}}
emulator: {{variation: false}}
timeouts: {{poll_seconds: 0.5}}
executors:
  cluster: {{type: slurm, remote_dir: {tmp / 'shared'}, python: {sys.executable}, gpus_per_job: 1,
            partition: debug, slurm_env: {{SLURM_CONF: {cluster.conf}}}, concurrency: 8}}
""")
    try:
        from cosmoskit._core import context
        from cosmoskit._core.media import make_test_video
        from cosmoskit._core.prompts import new_prompt
        from cosmoskit._core.worker import Worker

        scene = tmp / "scene"
        make_test_video(scene / "color.mp4", width=64, height=36, frames=8, fps=24)
        settings, ledger = context.settings(), context.ledger()
        with ledger.transaction() as tx:
            prompt = tx.add_prompt(new_prompt("bench", scene))
        worker = Worker(settings, ledger, strategy="single", interval=0.2)
        docs = worker.engine.new_runs("transfer", [prompt["id"]] * BATCHES, {"weights": "edge=1"})
        worker.engine.queue(docs)
        start = time.perf_counter()
        worker.run(once=True)
        wall = time.perf_counter() - start
        with ledger.read() as tx:
            batches = [dict(b) for b in tx.batches()]
            runs = [dict(r) for r in tx.runs()]
        assert all(r["status"] == "completed" for r in runs), [r["error"] for r in runs if r["status"] != "completed"]
        from datetime import datetime

        def stamp(path: Path) -> datetime | None:
            return datetime.fromisoformat(path.read_text().strip().replace("Z", "+00:00")) if path.exists() else None

        waits, inside, after, total = [], [], [], []
        for b in batches:
            folder = tmp / "shared" / "batches" / b["id"]
            began, ended = stamp(folder / "started_at"), stamp(folder / "finished_at")
            submitted, settled = datetime.fromisoformat(b["started"]), datetime.fromisoformat(b["finished"])
            total.append((settled - submitted).total_seconds())
            if began and ended:
                waits.append((began - submitted).total_seconds())
                inside.append((ended - began).total_seconds())
                after.append((settled - ended).total_seconds())
        gpus = 2
        rows = [
            ("batches (one zero-compute run each), 2 GPUs, concurrency 8", str(len(batches))),
            ("wall time, all batches", f"{wall:.1f} s ({len(batches) / wall:.2f} batches/s)"),
            ("GPU-slot time per batch (wall x GPUs / batches)", f"{wall * gpus / len(batches):.2f} s"),
            ("  sbatch accepted -> launcher started (median, incl. waiting for a GPU)",
             f"{statistics.median(waits):.2f} s"),
            ("  launcher start -> exit code (median)", f"{statistics.median(inside):.2f} s"),
            ("  exit code -> runs settled here (median)", f"{statistics.median(after):.2f} s"),
            ("  submission -> completion (median / max)", f"{statistics.median(total):.2f} / {max(total):.2f} s"),
        ]
        report("Slurm overhead (single-node Slurm, emulator at zero compute)", rows)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
