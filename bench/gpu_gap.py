"""The idle gap between consecutive batches on one GPU slot, on this machine and over the loopback sshd.

Each batch is one run on its own ~25 MB input (so every batch has real staging to do), through the
CPU EMULATOR of Transfer 1 (a simulated 2 s model load, 1 s of generation).  The gap is the next
batch's ``model_started_at`` minus the previous one's ``model_exited_at``: the launcher's own stamps,
to the millisecond.  Busy is the fraction of the span from the first model start to the last model
exit during which a model ran.  Each place is measured with staging ahead (the default) and without
(``worker.stage_ahead: false``: what a worker did before slots).

    python bench/gpu_gap.py [--batches 6] [--only local|ssh]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from common import report

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from services import sshd as sshd_mod

LOAD_SECONDS = 2.0
SECONDS_PER_CHUNK = 1.0


def stamp(path: Path) -> datetime:
    return datetime.fromisoformat(path.read_text().strip().replace("Z", "+00:00"))


def make_inputs(root: Path, n: int) -> list[Path]:
    """n scene folders, each with its own ~25 MB color video (high bitrate noise, so it does not compress)."""
    from cosmoskit._core.media import make_test_video

    scenes = []
    for i in range(n):
        scene = root / f"scene{i}"
        # seeded noise: every input its own bytes, so the store cannot reuse one and each batch sends its own
        make_test_video(scene / "color.mp4", width=1280, height=720, frames=121, fps=24, source="testsrc2",
                        extra=["-vf", f"noise=alls=60:allf=t+u:all_seed={i + 1}",
                               "-b:v", "40M", "-maxrate", "40M", "-bufsize", "80M"])
        scenes.append(scene)
    return scenes


def measure(home: Path, executor: dict, scenes: list[Path], stage_ahead: bool) -> dict:
    import yaml

    home.mkdir(parents=True)
    (home / "cosmoskit.yaml").write_text(yaml.safe_dump({
        "default_executor": "place",
        "model": {"runtime": "emulator"},
        "emulator": {"variation": False, "load_seconds": LOAD_SECONDS, "seconds_per_chunk": SECONDS_PER_CHUNK},
        "timeouts": {"poll_seconds": 2.0},
        "worker": {"stage_ahead": stage_ahead},
        "executors": {"place": executor},
    }))
    exe = str(Path(sys.executable).with_name("cosmoskit"))

    def cli(*args: str) -> str:
        proc = subprocess.run([exe, *args], cwd=home, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"cosmoskit {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
        return proc.stdout.strip()

    for i, scene in enumerate(scenes):
        pid = json.loads(cli("prompt", "create", f"gap bench {i}", str(scene), "--json"))["id"]
        cli("transfer", pid, "--weights", "vis=1", "--queue", "--json")
    start = time.perf_counter()
    cli("worker", "--once", "--strategy", "single")
    wall = time.perf_counter() - start
    runs = json.loads(cli("run", "list", "--json"))
    assert all(r["status"] == "completed" for r in runs), [r.get("error") for r in runs]
    folders = sorted((home / "batches").glob("bt_*"), key=lambda f: stamp(f / "model_started_at"))
    spans = [(stamp(f / "model_started_at"), stamp(f / "model_exited_at")) for f in folders]
    gaps = [(b[0] - a[1]).total_seconds() for a, b in pairwise(spans)]
    busy = sum((e - s).total_seconds() for s, e in spans)
    span = (spans[-1][1] - spans[0][0]).total_seconds()
    return {"gaps": gaps, "busy": busy / span, "wall": wall, "batches": len(spans)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--only", choices=("local", "ssh"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cosmoskit-bench-gap-"))
    os.chdir(tmp)
    scenes = make_inputs(tmp / "inputs", args.batches)
    size = sum(p.stat().st_size for s in scenes for p in s.iterdir()) / args.batches / 2**20
    places: list[tuple[str, dict]] = []
    server = None
    if args.only in (None, "local"):
        places.append(("local", {"type": "local", "gpus": 1}))
    if args.only in (None, "ssh"):
        if not sshd_mod.available():
            raise SystemExit("needs OpenSSH sshd (apt-get install openssh-server)")
        server = sshd_mod.make(tmp / "sshd").start()
        known = tmp / "known_hosts"
        known.write_text(server.known_hosts_line())
        places.append(("ssh (loopback sshd)", {
            "type": "ssh", "host": "127.0.0.1", "port": server.port, "user": server.user,
            "key_file": str(server.user_key), "known_hosts": str(known), "remote_dir": str(tmp / "remote"),
            "python": sys.executable, "gpus": 1}))
    rows = [("batches per place, one run each; input per batch", f"{args.batches}; {size:.1f} MB"),
            ("simulated model per batch (CPU emulator)", f"{LOAD_SECONDS:.0f} s load + {SECONDS_PER_CHUNK:.0f} s")]
    try:
        for n, (name, executor) in enumerate(places):
            for ahead in (True, False):
                got = measure(tmp / f"p{n}-{int(ahead)}", executor, scenes, ahead)
                label = f"{name}, {'staged ahead' if ahead else 'no staging (stage_ahead: false)'}"
                rows.append((f"{label}: idle gap median / max",
                             f"{statistics.median(got['gaps']):.2f} / {max(got['gaps']):.2f} s"))
                rows.append((f"{label}: model busy / wall", f"{got['busy'] * 100:.0f} % / {got['wall']:.1f} s"))
    finally:
        if server is not None:
            server.stop()
    report("Idle gap between consecutive batches on one GPU slot", rows)


if __name__ == "__main__":
    main()
