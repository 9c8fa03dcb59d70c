"""Drop folder benchmarks (figures only, no assertions).

1. Latency from a READY marker to a queued run: a Houdini-style folder (color/depth/segmentation,
   6 PNG frames of 32x18, so encoding is included) is copied into a running watcher's drop folder,
   then READY is written; the time until the watcher reports the run queued (after its ledger
   commit) is measured, N times.  Target: median at most 1 s.
2. Ingesting 500 ready folders: 500 such folders (each with READY) are put in the drop folder
   while no watcher runs; a watcher is started and the time until all 500 are queued is reported
   (catch-up, hashing, claims, encodes, probes, commits).

    python bench/dropfolder.py [--latency-runs 20] [--folders 500] [--jobs 4]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report


def make_template(root: Path) -> Path:
    from cosmoskit._core.media import ffmpeg_exe

    seq = root / "template"
    seq.mkdir(parents=True)
    for pattern, source, extra in (("color.%04d.png", "testsrc2", []),
                                   ("depth.%04d.png", "gradients", ["-pix_fmt", "gray"]),
                                   ("segmentation.%04d.png", "testsrc", [])):
        subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-nostdin", "-f", "lavfi",
                        "-i", f"{source}=size=32x18:rate=24",
                        "-frames:v", "6", "-start_number", "1", *extra, str(seq / pattern)], check=True)
    return seq


def project(root: Path, settle: float, jobs: int) -> tuple[object, object]:
    from cosmoskit._core import config
    from cosmoskit._core.ledger import Ledger

    home = root / "proj"
    home.mkdir()
    (home / "cosmoskit.yaml").write_text(
        "default_executor: local\nmodel:\n  runtime: emulator\n"
        f"watch:\n  settle_seconds: {settle}\n  rescan_seconds: 5.0\n  jobs: {jobs}\n")
    settings = config.load(home / "cosmoskit.yaml")
    return settings, Ledger(settings.home)


def start(settings: object, ledger: object, events: list) -> tuple[object, threading.Event, threading.Thread]:
    from cosmoskit_dropfolder.watcher import DropWatcher

    watcher = DropWatcher(settings, ledger, emit=lambda e: events.append((time.perf_counter(), e)))
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    watcher.caught_up.wait(30)
    return watcher, stop, thread


def latency(runs: int, jobs: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        template = make_template(root)
        settings, ledger = project(root, settle=600.0, jobs=jobs)  # only READY can trigger
        events: list = []
        watcher, stop, thread = start(settings, ledger, events)
        drop = watcher.root
        out = []
        for i in range(runs):
            name = f"shot{i:03d}"
            shutil.copytree(template, drop / name)
            (drop / name / "prompt.txt").write_text(f"shot {i}")
            time.sleep(0.2)
            t0 = time.perf_counter()
            (drop / name / "READY").touch()
            while True:
                done = [t for t, e in events if e["event"] in ("queued", "rejected") and e["folder"] == name]
                if done:
                    out.append(done[0] - t0)
                    break
                if time.perf_counter() - t0 > 30:
                    raise SystemExit(f"{name} was not queued within 30 s")
                time.sleep(0.002)
        stop.set()
        thread.join()
        return out


def catch_up(folders: int, jobs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        template = make_template(root)
        settings, ledger = project(root, settle=10.0, jobs=jobs)
        drop = Path(settings.home) / "drop"
        drop.mkdir()
        for i in range(folders):
            d = drop / f"shot{i:04d}"
            shutil.copytree(template, d)
            (d / "prompt.txt").write_text(f"shot {i}")
            (d / "READY").touch()
        events: list = []
        t0 = time.perf_counter()
        from cosmoskit_dropfolder.watcher import DropWatcher

        watcher = DropWatcher(settings, ledger, emit=lambda e: events.append((time.perf_counter(), e)))
        counts = watcher.run(once=True)
        total = time.perf_counter() - t0
        with ledger.read() as tx:
            runs = len(list(tx.runs()))
        queued = sorted(t - t0 for t, e in events if e["event"] == "queued")
        return {"total": total, "queued": counts["queued"], "runs": runs, "rejected": counts["rejected"],
                "first": queued[0] if queued else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--folders", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()

    lat = latency(args.latency_runs, args.jobs)
    report(f"READY -> queued run ({args.latency_runs} folders, color+depth+seg frames encoded, jobs={args.jobs})", [
        ("median", f"{statistics.median(lat):.3f} s  (target <= 1 s)"),
        ("p90", f"{sorted(lat)[int(0.9 * (len(lat) - 1))]:.3f} s"),
        ("min / max", f"{min(lat):.3f} s / {max(lat):.3f} s"),
    ])
    figures = catch_up(args.folders, args.jobs)
    report(f"Ingesting {args.folders} ready folders on start (catch-up, jobs={args.jobs})", [
        ("total", f"{figures['total']:.1f} s  ({figures['total'] / max(1, args.folders) * 1000:.0f} ms per folder)"),
        ("first queued after", f"{figures['first']:.2f} s"),
        ("queued / runs / rejected", f"{figures['queued']} / {figures['runs']} / {figures['rejected']}"),
    ])


if __name__ == "__main__":
    main()
