"""`cosmoskit ui` on a 10,000-run ledger: how long the Runs page takes, and how long a change takes to reach an
open page (targets: under 1 s each).

The ledger is synthetic (50 prompts, 10,000 runs over three months, most finished, a few queued); the server is
the real one (uvicorn on a loopback port, no worker).  Figures:

* the Runs page over HTTP: the first request after start (reads the whole ledger), then warm requests (the
  snapshot is reused until the ledger changes), a filtered and sorted page, a deep page, and the Queue page;
* the Runs page in headless Chromium (Playwright, /usr/bin/chromium): from navigation until the page is live
  (its HTML, CSS, JavaScript and change feed connected);
* change to page: a rating committed through ``Engine.rate`` (as `cosmoskit run rate` does) until the open Runs
  page shows it, repeated; the time includes the server noticing the change, the SSE message, the fragment
  request with its ledger re-read, and the swap.

Usage: python bench/ui.py [--runs 10000] [--repeat 10] [--keep DIR]
"""
from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import report

from cosmoskit._core import ids
from cosmoskit._core.ledger import Ledger

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def build(home: Path, runs: int) -> list[str]:
    """A project at ``home`` with ``runs`` runs; returns the ids of completed runs, newest first."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "cosmoskit.yaml").write_text("default_executor: local\nmodel:\n  runtime: emulator\n")
    rng = random.Random(3)
    t0 = datetime(2026, 8, 1, tzinfo=UTC)
    ledger = Ledger(home)
    with ledger.transaction() as tx:
        prompts = [tx.add_prompt({"name": f"shot-{p:02d}", "text": f"a warehouse, shot {p}, dusk light",
                                  "inputs": {"rgb": {"path": str(home / "scenes" / f"{p}.mp4"), "sha256": "0" * 64}},
                                  "fps": 24.0, "frames": 121, "width": 1280, "height": 704})
                   for p in range(50)]
        docs = []
        for i in range(runs):
            status = "queued" if i >= runs - 40 else rng.choice(["completed"] * 8 + ["failed", "cancelled"])
            created = (t0 + timedelta(minutes=13 * i)).isoformat()
            weights = {c: round(rng.random(), 2)
                       for c in rng.sample(["vis", "edge", "depth", "seg"], rng.randint(1, 4))}
            rid = ids.new_id("rs")
            docs.append({
                "id": rid, "prompt_id": prompts[i % 50]["id"], "operation": "transfer", "status": status,
                "params": {"weights": weights, "seed": i % 4, "num_steps": 35, "guidance": 7.0, "sigma_max": 70.0,
                           "blur_strength": "medium", "canny_threshold": "medium", "fps": 24, "num_gpus": 1,
                           "offload_diffusion_transformer": False, "offload_text_encoder_model": True,
                           "offload_guardrail_models": True,
                           "negative_prompt": "The video captures a game playing, with bad crappy graphics. " * 6},
                "priority": 0, "attempts": 1, "batch_id": None, "created": created,
                "outputs": {"output.mp4": f"outputs/run_{rid}/output.mp4"} if status == "completed" else {},
                "error": "CUDA out of memory" if status == "failed" else None,
                "reason": "oom" if status == "failed" else None, "rating": rng.choice([None, None, 3, 4, 5]),
                "started": created if status != "queued" else None,
                "finished": created if status not in ("queued",) else None,
            })
        tx.add_runs(docs)
    return [d["id"] for d in sorted(docs, key=lambda d: d["created"], reverse=True) if d["status"] == "completed"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[float, int, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start = time.perf_counter()
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    seconds = time.perf_counter() - start
    conn.close()
    return seconds, resp.status, len(body)


def ms(values: list[float]) -> str:
    return (f"median {statistics.median(values) * 1000:.0f} ms, min {min(values) * 1000:.0f} ms, "
            f"max {max(values) * 1000:.0f} ms ({len(values)} runs)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="cosmoskit-ui-bench-"))
    home = root / "proj"
    if home.exists():
        shutil.rmtree(home)
    started = time.perf_counter()
    completed = build(home, args.runs)
    made = time.perf_counter() - started
    os.chdir(home)
    from cosmoskit import api
    from cosmoskit_ui.server import UiServer

    server = UiServer(api.settings(), port=free_port(), work=False).start()
    rows: list[tuple[str, str]] = [("ledger", f"{args.runs} runs, 50 prompts (built in {made:.1f} s) in {home}")]
    try:
        port = server.port
        first, status, size = get(port, "/runs")
        assert status == 200, status
        rows.append(("Runs page, first request (reads the ledger)", f"{first * 1000:.0f} ms, {size // 1024} KB"))
        warm = [get(port, "/runs")[0] for _ in range(args.repeat)]
        rows.append(("Runs page, warm", ms(warm)))
        filtered = [get(port, "/runs?status=completed&rating=4&sort=rating&q=shot-1")[0] for _ in range(args.repeat)]
        rows.append(("Runs page, filtered + sorted", ms(filtered)))
        deep = [get(port, "/runs?page=150")[0] for _ in range(args.repeat)]
        rows.append(("Runs page 150", ms(deep)))
        queue = [get(port, "/queue")[0] for _ in range(args.repeat)]
        rows.append(("Queue page (40 queued)", ms(queue)))
        rows += browser_figures(server, completed, args.repeat)
    finally:
        server.stop()
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    report(f"cosmoskit ui, {args.runs}-run ledger (targets: page under 1 s, change on the page within 1 s)", rows)


def browser_figures(server: object, completed: list[str], repeat: int) -> list[tuple[str, str]]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return [("browser figures", "skipped: playwright is not installed")]
    if not os.path.exists(CHROMIUM):
        return [("browser figures", f"skipped: no {CHROMIUM}")]
    from cosmoskit import api

    port = server.port  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{port}"
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # bypass_csp: the page forbids eval, which Playwright's polling predicates use; the app itself is unchanged
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
        loads = []
        for _ in range(repeat):
            start = time.perf_counter()
            page.goto(base + "/runs", wait_until="domcontentloaded")
            page.wait_for_function("document.documentElement.dataset.liveState === 'live'", polling=5)
            loads.append(time.perf_counter() - start)
        rows.append(("Runs page in Chromium, navigation until live", ms(loads)))
        page.goto(base + "/runs?status=completed", wait_until="domcontentloaded")
        page.wait_for_function("document.documentElement.dataset.liveState === 'live'", polling=5)
        engine = api.Engine(api.settings(), api.Ledger(api.settings().home))
        latencies = []
        shown = completed[:20]  # on the first page of completed runs, newest first
        try:
            for n in range(repeat):
                run_id = shown[n % len(shown)]
                stars = 1 + (n % 5)
                wanted = str(stars)
                current = page.get_attribute(f"article.card[data-run={run_id}]", "data-rating")
                if current == wanted:
                    stars = 1 + (stars % 5)
                    wanted = str(stars)
                start = time.perf_counter()
                engine.rate(run_id, stars=stars)
                page.wait_for_function(
                    "([id, want]) => { const c = document.querySelector(`article.card[data-run=${id}]`);"
                    " return c && c.dataset.rating === want; }", arg=[run_id, wanted], polling=5, timeout=30_000)
                latencies.append(time.perf_counter() - start)
        finally:
            engine.close()
        rows.append(("change to page: a rating until the open Runs page shows it", ms(latencies)))
        browser.close()
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
