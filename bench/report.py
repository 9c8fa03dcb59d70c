"""`cosmoskit report` at 1,000 runs: the first build, a regeneration with nothing changed, and one after 10 new runs.

The ledger is synthetic but the media are real: a few 1280x704, 121-frame H.264 clips (what Cosmos Transfer 1
writes) hard-linked into every run folder, so each run costs a real ffmpeg pass while the disk holds a handful of
files.  Mix: transfers in batches of 4 (a quarter with a generated vis control), failures with logs, upscales of
transfers, enhances.  Usage: python bench/report.py [--runs 1000] [--frames 121] [--jobs N] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import cosmoskit_exe, report

from cosmoskit._core import ids
from cosmoskit._core.ledger import Ledger
from cosmoskit._core.media import make_test_video, sha256_file

SOURCES = ("testsrc2", "smptehdbars", "mandelbrot", "rgbtestsrc")


def stamp(t: datetime) -> str:
    return t.isoformat(timespec="microseconds")


def build(home: Path, runs: int, frames: int, prompts: int = 20) -> dict[str, float]:
    """A project at ``home`` with ``runs`` runs; returns how long the clips took to make."""
    clips = home / "clips"
    started = time.perf_counter()
    outputs = [make_test_video(clips / f"out{i}.mp4", width=1280, height=704, frames=frames, fps=24, source=s)
               for i, s in enumerate(SOURCES)]
    control = make_test_video(clips / "control.mp4", width=1280, height=704, frames=frames, fps=24,
                              source="color=c=gray")
    upscaled = make_test_video(clips / "upscaled.mp4", width=1280, height=704, frames=frames, fps=24, source="testsrc")
    made = time.perf_counter() - started
    (home / "cosmoskit.yaml").write_text("default_executor: local\nmodel:\n  runtime: emulator\n")
    rng = random.Random(7)
    ledger = Ledger(home)
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    prompt_docs = []
    for p in range(prompts):
        folder = home / "scenes" / f"scene{p}"
        folder.mkdir(parents=True)
        inputs = {}
        for key, src in (("rgb", outputs[p % len(outputs)]), ("depth", control)):
            dest = folder / f"{key}.mp4"
            shutil.copyfile(src, dest)  # each prompt its own input bytes: its own input previews
            with open(dest, "ab") as fh:
                fh.write(os.urandom(8))  # trailing bytes ffmpeg ignores; a distinct content hash
            inputs[key] = {"path": str(dest), "sha256": sha256_file(dest), "bytes": dest.stat().st_size,
                           "frames": frames, "fps": 24.0, "width": 1280, "height": 704, "codec": "h264"}
        prompt_docs.append({"id": ids.new_id("ps"), "name": f"scene-{p}",
                            "text": f"scene {p}: a warehouse, variation {p}", "negative_prompt": None, "inputs": inputs,
                            "fps": 24.0, "frames": frames, "width": 1280, "height": 704, "parent_prompt": None,
                            "history": [],
                            "created": stamp(t0 + timedelta(minutes=p))})
    run_docs, batch_docs = [], []
    clock = t0 + timedelta(hours=1)
    transfers: list[dict] = []
    i = 0
    while i < runs:
        kind = rng.random()
        prompt = prompt_docs[rng.randrange(prompts)]
        if kind < 0.08 and transfers:  # an upscale of an earlier transfer, alone in its batch
            group = [("upscale", transfers[rng.randrange(len(transfers))])]
        elif kind < 0.12:
            group = [("enhance", None)]
        else:
            group = [("transfer", None)] * min(4, runs - i)
        bid = ids.new_id("bt")
        seconds = 300 + 200 * len(group)
        start, end = clock, clock + timedelta(seconds=seconds)
        clock = end + timedelta(seconds=5)
        members = []
        controls = rng.sample(("vis", "edge", "depth", "seg"), rng.randint(1, 3))  # a strategy batches alike runs
        steps = rng.choice((20, 35, 50))
        for op, source in group:
            rid = ids.new_id("rs")
            folder = home / "outputs" / f"run_{rid}"
            (folder / "logs").mkdir(parents=True)
            failed = op == "transfer" and rng.random() < 0.05
            doc = {"id": rid, "prompt_id": (source or {}).get("prompt_id") or prompt["id"], "operation": op,
                   "status": "failed" if failed else "completed", "priority": 0, "attempts": 1, "batch_id": bid,
                   "outputs": {}, "error": None, "reason": None, "parent_run": None, "rating": None,
                   "started": stamp(start), "finished": stamp(end), "created": stamp(start - timedelta(minutes=1)),
                   "executor": "local"}
            (folder / "logs" / "run.log").write_text(f"[cosmoskit-launcher] batch {bid}\nrun {rid}\n" * 20)
            if op == "transfer":
                w = {k: round(rng.uniform(0.05, 1), 2) for k in controls}
                doc["params"] = {"weights": w, "num_steps": steps, "guidance": 7.0, "seed": rng.randrange(1000),
                                 "sigma_max": 70.0, "blur_strength": "medium", "canny_threshold": "medium",
                                 "num_gpus": 1, "offload_diffusion_transformer": False,
                                 "offload_text_encoder_model": True, "offload_guardrail_models": True,
                                 "negative_prompt": "", "fps": 24}
                if failed:
                    doc.update(error="blocked by the safety guardrail", reason="guardrail")
                else:
                    os.link(outputs[rng.randrange(len(outputs))], folder / "output.mp4")
                    doc["outputs"]["output.mp4"] = f"outputs/run_{rid}/output.mp4"
                    if "vis" in w and rng.random() < 0.25:
                        os.link(control, folder / "vis_input_control.mp4")
                        doc["outputs"]["vis_input_control.mp4"] = f"outputs/run_{rid}/vis_input_control.mp4"
                    transfers.append(doc)
                doc["rating"] = rng.choice((None, None, None, 1, 2, 3, 4, 5))
            elif op == "upscale":
                doc["parent_run"] = source["id"]
                doc["params"] = {"video": {"path": str(home / source["outputs"]["output.mp4"]), "frames": frames},
                                 "source_run": source["id"], "control_weight": 0.5, "num_steps": 10, "num_gpus": 1}
                os.link(upscaled, folder / "upscaled.mp4")
                doc["outputs"]["upscaled.mp4"] = f"outputs/run_{rid}/upscaled.mp4"
            else:
                doc["params"] = {"overwrite": False}
                (folder / "enhanced_prompt.txt").write_text(prompt["text"] + ", photoreal, golden hour light")
                doc["outputs"]["enhanced_prompt.txt"] = f"outputs/run_{rid}/enhanced_prompt.txt"
            run_docs.append(doc)
            members.append(rid)
        batch_docs.append({"id": bid, "operation": group[0][0], "executor": "local", "runs": members,
                           "state": "done", "started": stamp(start), "finished": stamp(end),
                           "created": stamp(start - timedelta(minutes=1))})
        i += len(group)
    with ledger.transaction() as tx:
        for p in prompt_docs:
            tx.add_prompt(p)
        tx.add_runs(run_docs)
        for b in batch_docs:
            tx.add_batch(b)
    return {"clips": made, "runs": len(run_docs), "batches": len(batch_docs),
            "videos": sum(1 for r in run_docs for k in r["outputs"] if k.endswith(".mp4")) + 2 * prompts}


def add_runs(home: Path, n: int) -> None:
    """n more completed transfers, as a worker would leave them."""
    ledger = Ledger(home)
    with ledger.transaction() as tx:
        prompt = next(iter(tx.prompts()))
        some = next(r for r in tx.runs() if r["operation"] == "transfer" and r["status"] == "completed")
    docs = []
    now = datetime.now(UTC)
    for _ in range(n):
        rid = ids.new_id("rs")
        folder = home / "outputs" / f"run_{rid}"
        folder.mkdir(parents=True)
        os.link(home / some["outputs"]["output.mp4"], folder / "output.mp4")
        docs.append({**some, "id": rid, "prompt_id": prompt["id"], "created": stamp(now), "batch_id": None,
                     "outputs": {"output.mp4": f"outputs/run_{rid}/output.mp4"}})
    with ledger.transaction() as tx:
        tx.add_runs(docs)


def timed_report(home: Path, out: Path, jobs: int | None) -> tuple[float, dict]:
    args = [cosmoskit_exe(), "report", "--out", str(out), "--json"] + (["--jobs", str(jobs)] if jobs else [])
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=home,
                          env={**os.environ, "COSMOSKIT_HOME": str(home)})
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"report failed: {proc.stderr[-1000:]}")
    return took, json.loads(proc.stdout)


def chromium_load(index: Path, profile: Path, fragment: str) -> float | None:
    """Wall time of headless Chromium opening the page and dumping its DOM after the load event (report.js runs
    before it).  Real time: --virtual-time-budget would add the page's pending media loads."""
    exe = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
    if not exe:
        return None
    start = time.perf_counter()
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={profile}", "--dump-dom", index.as_uri() + fragment],
                   capture_output=True, timeout=300)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=121)
    ap.add_argument("--jobs", type=int, default=None, help="ffmpeg processes at once (default: CPU count)")
    ap.add_argument("--keep", type=Path, default=None, help="build the project here and keep it")
    args = ap.parse_args()
    tmp = None
    if args.keep:
        home = args.keep
        home.mkdir(parents=True, exist_ok=False)
    else:
        tmp = tempfile.TemporaryDirectory()
        home = Path(tmp.name)
    try:
        made = build(home, args.runs, args.frames)
        out = home / "report"
        first, r1 = timed_report(home, out, args.jobs)
        again, r2 = timed_report(home, out, args.jobs)
        add_runs(home, 10)
        more, r3 = timed_report(home, out, args.jobs)
        size = (out / "index.html").stat().st_size
        media = sum(f.stat().st_size for f in (out / "media").rglob("*") if f.is_file())
        page = chromium_load(out / "index.html", home / "chromium", "")
        filtered = chromium_load(out / "index.html", home / "chromium", "#status=completed&w.vis=0.5-1&sort=rating")
        rows = [
            ("ledger", f"{made['runs']} runs in {made['batches']} batches, 20 prompts; {made['videos']} videos "
                       f"({args.frames} frames, 1280x704); CPUs {os.cpu_count()}"),
            ("first report", f"{first:.1f} s  ({first / made['runs'] * 1000:.0f} ms per run; media {r1['media']})"),
            ("again, nothing changed", f"{again:.2f} s  (media {r2['media']})"),
            ("after 10 new runs", f"{more:.2f} s  (media {r3['media']})"),
            ("index.html", f"{size / 1e6:.2f} MB; media folder {media / 1e6:.0f} MB"),
            ("batching speed-up shown", f"{r3['summary']['speedup']:.2f}x "
                                        f"({r3['summary']['batches_modelled']} batches priced by the cost model)"),
        ]
        if page is not None:
            rows.append(("Chromium: start, load, scripts, dump",
                         f"{page:.2f} s; with a filter and sort in the hash {filtered:.2f} s"))
        report(f"cosmoskit report, {made['runs']} runs", rows)
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
