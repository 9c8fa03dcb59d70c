"""``cosmoskit report``: the HTML gallery, rendered for real in headless Chromium."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path
from typing import ClassVar

import pytest

from conftest import require

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--mute-audio"]


# ------------------------------------------------------------------ helpers
def prompt(cli, text, folder, *extra):
    result = cli("prompt", "create", text, str(folder), "--json", *extra)
    assert result.exit_code == 0, result
    return result.json()["id"]


def transfer(cli, *args):
    result = cli("transfer", *args, "--json")
    assert result.exit_code in (0, 3), result  # 3: a run did not complete (some tests block one on purpose)
    return result.json()


def ledger_runs():
    from cosmoskit._core import context

    with context.ledger().read() as tx:
        return {r["id"]: dict(r) for r in tx.runs()}


def report(cli, *args):
    result = cli("report", "--json", *args)
    assert result.exit_code == 0, result
    return result.json()


def chromium_path() -> str:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        require("chromium")
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


def chromium(url: str, profile: Path, *extra: str) -> str:
    """Load ``url`` headless, let its JavaScript run, and return stdout (the DOM with ``--dump-dom``)."""
    profile.mkdir(parents=True, exist_ok=True)
    cmd = [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=4000", *extra, url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def dump(index: Path, tmp: Path, hashes: list[str]) -> list[Dom]:
    """The DOM after report.js ran, for each URL hash, loaded in parallel."""
    def one(i_h):
        i, h = i_h
        return Dom(chromium(index.as_uri() + h, tmp / f"profile{i}", "--dump-dom"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, enumerate(hashes)))


class Dom(HTMLParser):
    """Run cards, what each shows, and which are hidden, from a dumped DOM."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.html = html
        self.cards: dict[str, dict] = {}
        self.order: list[str] = []
        self.root: dict[str, str | None] = {}
        self._stack: list[tuple[str, str | None]] = []
        self._text_of: str | None = None
        self.feed(html)

    VOID: ClassVar[set[str]] = {"img", "input", "br", "meta", "link", "source", "hr"}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.root = a
        current = next((cid for _, cid in reversed(self._stack) if cid), None)
        if tag == "article" and "run" in (a.get("class") or "").split():
            current = a["data-id"]
            self.cards[current] = {"attrs": a, "hidden": "hidden" in a, "videos": [], "imgs": [], "links": [],
                                   "text": ""}
            self.order.append(current)
        if current:
            card = self.cards[current]
            if tag == "a" and "playable" in (a.get("class") or ""):
                card["videos"].append(a)
            elif tag == "img":
                card["imgs"].append(a)
            elif tag == "a":
                card["links"].append(a.get("href"))
        if tag not in self.VOID:
            self._stack.append((tag, current if tag == "article" and "run" in (a.get("class") or "") else None))

    def handle_endtag(self, tag):
        while self._stack:
            t, _ = self._stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        current = next((cid for _, cid in reversed(self._stack) if cid), None)
        if current:
            self.cards[current]["text"] += data

    def hidden_of(self, run_id: str) -> bool:
        """Hidden itself or inside a hidden unit/section (checked on the raw markup around the card)."""
        return self.cards[run_id]["hidden"]

    def shown(self) -> set[str]:
        return {rid for rid, c in self.cards.items() if not c["hidden"]}


def make_ledger(cli, videos):
    """Transfers (a batch of two, one alone), an upscale, an enhance, a guardrail failure, a rating."""
    p1 = prompt(cli, "a forklift in a warehouse", videos["scene"])
    p2 = prompt(cli, "a loading dock at dusk", videos["scene"])
    bad = prompt(cli, "bad EMULATOR_GUARDRAIL_BLOCK", videos["lone"])
    batch = transfer(cli, p1, p2, "--weights", "vis=0.8,depth=0.2", "--seed", "7")
    assert len({r["batch_id"] for r in batch}) == 1
    (alone,) = transfer(cli, p1, "--weights", "edge=0.3,depth=0.7", "--num-steps", "20", "--guidance", "5")
    (up,) = cli("upscale", "--from-run", alone["id"], "--json").json()
    (enh,) = cli("enhance", p1, "--json").json()
    (failed,) = transfer(cli, bad, "--weights", "vis=1")
    assert cli("run", "rate", alone["id"], "4").exit_code == 0
    assert failed["status"] == "failed" and up["status"] == enh["status"] == "completed"
    return {"p1": p1, "p2": p2, "bad": bad, "batch": [r["id"] for r in batch], "alone": alone["id"],
            "up": up["id"], "enh": enh["id"], "failed": failed["id"], "enhanced_prompt": enh["result_prompt"]}


# ------------------------------------------------------------------ the page in a real browser
def test_every_run_appears_and_filters_work_in_chromium(project, cli, videos, tmp_path):
    ids = make_ledger(cli, videos)
    runs = ledger_runs()
    out = tmp_path / "gallery"
    data = report(cli, "--out", str(out))
    assert set(data["run_ids"]) == set(runs) and data["media"].get("failed", 0) == 0
    assert set(data["emulator_runs"]) == set(runs), "every run here came from the emulator"
    index = out / "index.html"
    html = index.read_text()
    assert "<script src=\"report.js\"></script>" in html and (out / "report.js").is_file()
    import re

    assert not re.search(r'(?:src|href)="(?:https?:)?//', html), "nothing from the network"
    for name in ("report.css", "report.js"):
        text = (out / name).read_text()
        assert not re.search(r"https?://|@import|fetch\(|XMLHttpRequest", text), name

    hashes = ["", "#status=failed", "#op=upscale", "#w.vis=0.5-0.9", "#rating=4", "#sort=rating&op=transfer,upscale",
              "#q=loading%20dock"]
    full, failed, upscale, vis, rated, by_rating, search = dump(index, tmp_path, hashes)

    # every run on the ledger, with its output
    assert set(full.cards) == set(runs) and full.root.get("data-ready") == "1"
    assert full.root["data-shown"] == str(len(runs)) and not any(c["hidden"] for c in full.cards.values())
    for rid, run in runs.items():
        card = full.cards[rid]
        assert card["attrs"]["data-status"] == run["status"] and card["attrs"]["data-op"] == run["operation"]
        assert "emulator" in card["text"]
        if run["operation"] in ("transfer", "upscale") and run["status"] == "completed":
            (main, *_controls) = card["videos"]  # thumbnails that play in place
            stem = "output" if run["operation"] == "transfer" else "upscaled"
            assert main["data-video"] == f"media/runs/{rid}/{stem}/preview.mp4"
            assert any(i["src"] == f"media/runs/{rid}/{stem}/thumb.jpg" for i in card["imgs"]), "thumbnail"
            for kind in ("preview.mp4", "thumb.jpg", "sheet.jpg"):
                assert (out / "media" / "runs" / rid / stem / kind).stat().st_size > 0
            assert any(i["src"] == f"media/runs/{rid}/{stem}/sheet.jpg" for i in card["imgs"]), "contact sheet"
            original = next(h for h in card["links"] if h and h.endswith(f"{stem}.mp4"))
            assert (out / original).resolve() == (project / run["outputs"][f"{stem}.mp4"]).resolve()
    # the facts of a run
    alone = full.cards[ids["alone"]]
    for needle in ("edge", "0.30", "depth", "0.70", "20 steps", "guidance 5", "seed 1", "★★★★"):
        assert needle in alone["text"], needle
    assert alone["attrs"]["data-rating"] == "4" and 'title="rated 4/5"' in full.html
    assert "vis control" not in alone["text"] and "edge control" in alone["text"], "the generated control beside it"
    # the failure with its reason and log, the log travelling with the report
    bad = full.cards[ids["failed"]]
    assert "guardrail" in bad["text"]
    log = next(h for h in bad["links"] if h and h.endswith("run.log.txt"))
    assert "cosmos-emulator" in (out / log).read_text()
    # the enhanced prompt beside its parent, the upscale beside its source
    assert "enhanced prompt" in full.cards[ids["enh"]]["text"]
    assert f'id="p-{ids["enhanced_prompt"]}"' in full.html
    section = full.html.split(f'id="p-{ids["p1"]}"', 1)[1]
    assert section.index(f'id="p-{ids["enhanced_prompt"]}"') < section.index("</section></div></section>") + 50
    pair = full.html.split('class="unit pair"', 1)[1].split('class="unit', 1)[0]
    assert pair.index(f'id="r-{ids["alone"]}"') < pair.index(f'id="r-{ids["up"]}"')

    # filters, driven by the URL hash
    assert failed.shown() == {ids["failed"]} and failed.root["data-shown"] == "1"
    assert upscale.shown() == {ids["up"]}
    assert vis.shown() == set(ids["batch"]), "vis 0.5..0.9: the batch at vis=0.8, not the failed run at vis=1"
    assert rated.shown() == {ids["alone"]}
    shown = [r for r in by_rating.order if r in by_rating.shown()]
    p1_cards = [r for r in shown if runs[r]["prompt_id"] == ids["p1"]]
    assert p1_cards[0] == ids["alone"], "best rated first"
    assert ids["enh"] not in by_rating.shown()
    p2_run = next(r for r in ids["batch"] if runs[r]["prompt_id"] == ids["p2"])
    assert search.shown() == {p2_run}, "search by prompt text"

    # a screenshot, for people
    shot = tmp_path / "report.png"
    chromium(index.as_uri(), tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1400,1800")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_missing_or_broken_output_is_shown_not_fatal(project, cli, videos, tmp_path):
    pid = prompt(cli, "a quiet street", videos["scene"])
    (gone,), (broken,), (fine,) = (transfer(cli, pid, "--weights", w) for w in ("vis=1", "depth=1", "seg=1"))
    (project / gone["outputs"]["output.mp4"]).unlink()
    (project / broken["outputs"]["output.mp4"]).write_bytes(b"not a video at all")
    out = tmp_path / "r"
    data = report(cli, "--out", str(out))
    assert data["missing_outputs"] == [gone["id"]]
    assert data["media"]["failed"] == 1
    (dom,) = dump(out / "index.html", tmp_path, [""])
    assert set(dom.cards) == {gone["id"], broken["id"], fine["id"]}
    assert "output missing" in dom.cards[gone["id"]]["text"] and "is-missing" in dom.cards[gone["id"]]["attrs"]["class"]
    assert "cannot preview" in dom.cards[broken["id"]]["text"]
    assert dom.cards[fine["id"]]["videos"][0]["data-video"].endswith("/output/preview.mp4")
    # the human summary says so too
    result = cli("report", "--out", str(out))
    assert result.exit_code == 0 and "1 missing" in result.stdout and "1 unreadable" in result.stdout


def test_regeneration_reuses_thumbnails_of_unchanged_runs(project, cli, videos, tmp_path):
    pid = prompt(cli, "reuse me", videos["lone"])
    (a,) = transfer(cli, pid, "--weights", "vis=1")
    (b,) = transfer(cli, pid, "--weights", "edge=1")
    out = tmp_path / "r"
    first = report(cli, "--out", str(out))
    made = first["media"]["made"]
    assert made == 5 and "reused" not in first["media"]  # input, 2 outputs, 2 generated controls
    thumb = out / "media" / "runs" / a["id"] / "output" / "thumb.jpg"
    stamp = thumb.stat().st_mtime_ns
    second = report(cli, "--out", str(out))
    assert second["media"] == {"reused": made}
    assert thumb.stat().st_mtime_ns == stamp
    # a new run: only its media is made
    (c,) = transfer(cli, pid, "--weights", "vis=0.5")
    third = report(cli, "--out", str(out))
    assert third["media"] == {"reused": made, "made": 2}
    # an output replaced in place (new mtime): made again
    target = project / b["outputs"]["output.mp4"]
    shutil.copyfile(project / c["outputs"]["output.mp4"], target)
    os.utime(target, ns=(stamp + 10**9, stamp + 10**9))
    fourth = report(cli, "--out", str(out))
    assert fourth["media"] == {"reused": made + 1, "made": 1}
    # a run deleted from the ledger: its media goes too
    assert cli("run", "delete", a["id"], "--yes").exit_code == 0
    fifth = report(cli, "--out", str(out))
    assert fifth["pruned_runs"] == 1 and not (out / "media" / "runs" / a["id"]).exists()
    assert a["id"] not in (out / "index.html").read_text()


def test_selection_options(project, cli, videos, tmp_path):
    p1 = prompt(cli, "first prompt", videos["lone"])
    p2 = prompt(cli, "second prompt", videos["lone"])
    (r1,) = transfer(cli, p1, "--weights", "vis=1")
    (r2,) = transfer(cli, p2, "--weights", "vis=1")
    (enh,) = cli("enhance", p1, "--json").json()
    assert enh["status"] == "completed" and enh.get("result_prompt"), enh
    queued = cli("transfer", p2, "--queue", "--json").json()[0]
    (loose,) = cli("upscale", "--video", str(videos["lone"]), "--json").json()
    out = tmp_path / "r"
    everything = report(cli, "--out", str(out))
    assert set(everything["run_ids"]) == {r1["id"], r2["id"], enh["id"], queued["id"], loose["id"]}
    html = (out / "index.html").read_text()
    assert html.index('id="p-no-prompt"') < html.index(f'id="r-{loose["id"]}"'), "a video upscaled without a prompt"
    assert "queued" in html.split(f'id="r-{queued["id"]}"', 1)[1].split("</article>", 1)[0]
    only = report(cli, "--out", str(out), "--prompt", p1[:7])
    assert set(only["run_ids"]) == {r1["id"], enh["id"]} and only["prompts"] == 2, "the prompt and its enhanced child"
    assert set(report(cli, "--out", str(out), "--status", "queued")["run_ids"]) == {queued["id"]}
    assert set(report(cli, "--out", str(out), "--status", "completed,queued", "--prompt", p2)["run_ids"]) == \
        {r2["id"], queued["id"]}
    assert report(cli, "--out", str(out), "--since", "1h")["runs"] == 5
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    nothing = report(cli, "--out", str(out), "--since", future)
    assert nothing["runs"] == 0 and nothing["prompts"] == 0
    assert "Nothing to show" in (out / "index.html").read_text()
    # the default folder is <home>/report
    assert report(cli)["index"] == str(project / "report" / "index.html")
    # bad input: one line, exit 1
    for args, needle in ((("--status", "done"), "a status is one of"), (("--since", "yesterday"), "not a date"),
                         (("--prompt", "ps_nothere"), "no prompt matches")):
        result = cli("report", *args)
        assert result.exit_code == 1 and needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("mine")
    result = cli("report", "--out", str(busy))
    assert result.exit_code == 1 and "holds no report" in result.stderr


def test_a_sweep_sits_side_by_side_and_can_be_chosen(project, cli, videos, tmp_path):
    pid = prompt(cli, "swept", videos["lone"])
    (before,) = transfer(cli, pid, "--weights", "vis=1")
    swept = cli("transfer", pid, "--weights", "vis=1", "--seed", "1-3", "--queue", "--json").json()
    (after,) = transfer(cli, pid, "--weights", "edge=1")
    sweep = swept[0]["sweep"]
    assert sweep.startswith("sw_") and {r["sweep"] for r in swept} == {sweep}
    out = tmp_path / "r"
    report(cli, "--out", str(out))
    html = (out / "index.html").read_text()
    shown = sorted((html.index(f'id="r-{r["id"]}"'), r["id"]) for r in [before, *swept, after])
    order = [rid for _, rid in shown]
    assert order == [after["id"], *(r["id"] for r in swept), before["id"]], \
        "newest first, the sweep's runs side by side in the order it made them"
    assert f"sweep {sweep}" in html and f'data-sweep="{sweep}"' in html
    only = report(cli, "--out", str(out), "--sweep", sweep)
    assert set(only["run_ids"]) == {r["id"] for r in swept} and only["filters"]["sweep"] == [sweep]
    result = cli("report", "--out", str(out), "--sweep", "sw_nothere")
    assert result.exit_code == 1 and "no sweep 'sw_nothere'" in result.stderr


def test_summary_speedup_and_gpu_hours():
    from cosmoskit_report.summary import compute

    def run(rid, batch, op="transfer", gpus=1, status="completed"):
        return {"id": rid, "batch_id": batch, "operation": op, "status": status, "params": {"num_gpus": gpus}}

    runs = {r["id"]: r for r in [run("a", "b1"), run("b", "b1"), run("c", "b1"), run("d", "b2", gpus=2),
                                 run("e", "b4", op="upscale"), run("f", "b4", op="upscale")]}
    t0 = "2026-01-01T00:00:00+00:00"
    batches = {
        "b1": {"id": "b1", "operation": "transfer", "runs": ["a", "b", "c"], "started": t0,
               "finished": "2026-01-01T01:00:00+00:00"},
        "b2": {"id": "b2", "operation": "transfer", "runs": ["d"], "started": t0,
               "finished": "2026-01-01T00:30:00+00:00"},
        # crashed: e and f were retried in b4, so b3 is time spent for nothing
        "b3": {"id": "b3", "operation": "upscale", "runs": ["e", "f"], "started": t0,
               "finished": "2026-01-01T00:06:00+00:00"},
        "b4": {"id": "b4", "operation": "upscale", "runs": ["e", "f"], "started": t0,
               "finished": "2026-01-01T00:12:00+00:00"},
        "b5": {"id": "b5", "operation": "transfer", "runs": ["a"], "started": t0, "finished": None},
    }
    ratio = lambda batch, members, here: {"b1": 2.5, "b2": 1.0, "b4": 1.5}[batch["id"]]  # noqa: E731
    s = compute(list(runs.values()), runs, batches, ratio)
    assert s["by_status"] == {"completed": 6}
    assert s["gpu"]["transfer"]["gpu_seconds"] == 3600 + 2 * 1800  # b2 used two GPUs
    assert s["gpu"]["upscale"]["gpu_seconds"] == 360 + 720 and s["gpu"]["upscale"]["batches"] == 2
    assert s["running_batches"] == 1
    spent = 3600 + 3600 + 360 + 720
    assert s["one_at_a_time_seconds"] == 3600 * 2.5 + 3600 * 1.0 + 720 * 1.5
    assert s["speedup"] == pytest.approx((9000 + 3600 + 1080) / spent)
    # only some runs shown: a batch counts with the share of its runs shown
    part = compute([runs["a"]], runs, batches, ratio)
    assert part["gpu_seconds"] == pytest.approx(1200) and part["speedup"] == pytest.approx(2.5)


def test_emulator_outputs_are_marked_and_real_ones_are_not(project, cli, videos, tmp_path):
    pid = prompt(cli, "is it real", videos["lone"])
    (emu,) = transfer(cli, pid, "--weights", "vis=1")
    (real,) = transfer(cli, pid, "--weights", "edge=1")
    # make the second look like a GPU host's output: no emulator trace anywhere
    folder = project / "outputs" / f"run_{real['id']}"
    (folder / "logs" / "run.log").write_text("[cosmoskit-launcher] runtime docker\nmodel exited with code 0\n")
    (folder / "prompt.txt").write_text("is it real")
    shutil.rmtree(project / "batches" / real["batch_id"])
    from cosmoskit._core.media import make_test_video

    make_test_video(folder / "output.mp4", width=128, height=72, frames=8)  # no cosmos-emulator comment inside
    (folder / "edge_input_control.mp4").unlink()
    out = tmp_path / "r"
    data = report(cli, "--out", str(out))
    assert data["emulator_runs"] == [emu["id"]]
    html = (out / "index.html").read_text()
    card = lambda rid: html.split(f'id="r-{rid}"', 1)[1].split("</article>", 1)[0]  # noqa: E731
    assert "emulator output" in card(emu["id"]) and 'class="tag emu"' in card(emu["id"])
    assert "emulator output" not in card(real["id"]) and "tag emu" not in card(real["id"])
    assert 'class="run st-completed op-transfer emu"' not in html.split(f'id="r-{real["id"]}"')[0][-200:]
    assert "1 run(s) here are <b>emulator output</b>" in html


def test_report_command_is_listed_and_help_is_light(project, cli):
    result = cli("--help")
    assert result.exit_code == 0 and "report" in result.stdout
    plugins = cli("plugins", "--json").json()
    entry = next(p for p in (plugins if isinstance(plugins, list) else plugins.get("plugins", []))
                 if "cosmoskit_report" in json.dumps(p))
    assert "report" in json.dumps(entry)
    import sys

    code = ("import sys, cosmoskit._cli as c; c.build(); "
            "bad = [m for m in ('cosmoskit_report.build', 'cosmoskit_report.render', 'cosmoskit._core.engine') "
            "if m in sys.modules]; "
            "print(bad)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=project)
    assert proc.returncode == 0 and "cosmoskit_report" not in proc.stdout, proc


class Browser:
    """Headless Chromium driven over its DevTools pipe (fd 3 in, fd 4 out): real time, unlike --virtual-time-budget,
    where media clocks jump straight to the end."""

    def __init__(self, profile: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        ours_r, theirs_w = os.pipe()
        theirs_r, ours_w = os.pipe()

        def fds() -> None:  # in the child: the pipe ends become fds 3 and 4, inheritable
            a, b = os.dup(theirs_r), os.dup(theirs_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
             "--autoplay-policy=no-user-gesture-required", "--window-size=1280,900", "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(theirs_r)
        os.close(theirs_w)
        self.rfd, self.wfd = ours_r, ours_w
        self.buf, self.next_id, self.session = b"", 0, None

    def send(self, method: str, params: dict | None = None) -> int:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        return self.next_id

    def wait(self, msg_id: int | None = None, event: str | None = None, timeout: float = 30) -> dict:
        import select
        import time

        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                msg = json.loads(raw)
                if (msg_id is not None and msg.get("id") == msg_id) or (event and msg.get("method") == event):
                    assert "error" not in msg, msg
                    return msg
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self.rfd], [], [], left)[0], "chromium did not answer in time"
            chunk = os.read(self.rfd, 1 << 16)
            assert chunk, "chromium closed its DevTools pipe"
            self.buf += chunk

    def open(self, url: str) -> None:
        target = self.wait(self.send("Target.createTarget", {"url": "about:blank"}))["result"]["targetId"]
        attached = self.wait(self.send("Target.attachToTarget", {"targetId": target, "flatten": True}))
        self.session = attached["result"]["sessionId"]
        self.wait(self.send("Page.enable"))
        self.send("Page.navigate", {"url": url})
        self.wait(event="Page.loadEventFired")

    def eval(self, expression: str, timeout: float = 30):
        reply = self.wait(self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                         "returnByValue": True}), timeout=timeout)
        assert "exceptionDetails" not in reply["result"], reply
        return reply["result"]["result"].get("value")

    def close(self) -> None:
        try:
            self.session = None
            self.send("Browser.close")
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self.rfd)
            os.close(self.wfd)


SYNC_PROBE = """
(async function () {
  // Conditions are waited for (up to a generous deadline), never assumed after a fixed sleep: a loaded
  // machine plays, seeks and corrects later, but it must get there.
  var sleep = function (ms) { return new Promise(function (ok) { setTimeout(ok, ms); }); };
  var sec = document.querySelector('section.prompt');
  var before = sec.querySelectorAll('video').length;
  var vids;
  var snap = function () { return vids.map(function (v) {
    return {t: v.currentTime, d: v.duration, paused: v.paused, ended: v.ended, loop: v.loop,
            ready: v.readyState}; }); };
  var spread = function (s) {          // as the Python spread(): largest distance around the loop
    var d = s[0].d, ts = s.map(function (v) { return v.t % v.d; }).sort(function (x, y) { return x - y; });
    var gaps = ts.slice(1).map(function (x, i) { return x - ts[i]; }).concat([ts[0] + d - ts[ts.length - 1]]);
    return d - Math.max.apply(null, gaps);
  };
  var until = async function (ok, ms) {
    var end = Date.now() + (ms || 20000), s = snap();
    while (Date.now() < end) { s = snap(); if (ok(s)) return s; await sleep(20); }
    return s;
  };
  var settled = function (s) {
    return s.every(function (v) { return v.ready >= 2 && !v.paused && v.d > 0; }) && spread(s) < 0.15;
  };
  sec.querySelector('[data-play]').click();          // "play side by side": thumbnails become videos
  vids = Array.prototype.slice.call(sec.querySelectorAll(':scope > .pbody video'));
  var a = await until(settled);
  vids[2].currentTime = (vids[2].currentTime + 0.7) % vids[2].duration;   // knock one out of step
  var k = await until(function (s) { return spread(s) > 0.5; }, 5000);
  var b = await until(settled);                        // pulled back into step
  var t0 = vids[0].currentTime;                        // then past the end of the 2 s clips: they must loop
  await until(function (s) { return s[0].t < t0; });
  var c = await until(settled);
  var cls = sec.className;
  sec.querySelector('[data-play]').click();          // pause
  var paused = (await until(function (s) { return s.every(function (v) { return v.paused; }); }))
    .every(function (v) { return v.paused; });
  location.hash = 'autoplay=1';                       // "play in view": starts what is on screen
  var auto = (await until(function (s) {
    return sec.classList.contains('playing') && s.every(function (v) { return !v.paused; }); }))
    .every(function (v) { return !v.paused; }) && sec.classList.contains('playing');
  return {before: before, a: a, k: k, b: b, c: c, cls: cls, paused: paused, auto: auto};
})()
"""


def spread(snapshot: list[dict]) -> float:
    """Largest distance between two videos' clocks, measured around the loop."""
    times = sorted(v["t"] % v["d"] for v in snapshot)
    d = snapshot[0]["d"]
    gaps = [b - a for a, b in pairwise(times)] + [times[0] + d - times[-1]]
    return d - max(gaps)


def test_side_by_side_videos_play_in_place_looping_and_in_sync(project, cli, tmp_path):
    from cosmoskit._core.media import make_test_video

    scene = tmp_path / "scene"
    make_test_video(scene / "color.mp4", source="testsrc2", width=64, height=36, frames=48, fps=24)
    make_test_video(scene / "depth.mp4", source="color=c=gray", width=64, height=36, frames=48, fps=24)
    pid = prompt(cli, "two seconds of video", scene)
    transfer(cli, pid, "--weights", "vis=1")
    transfer(cli, pid, "--weights", "depth=1")
    out = tmp_path / "r"
    report(cli, "--out", str(out))
    browser = Browser(tmp_path / "profile")
    try:
        browser.open((out / "index.html").as_uri())
        state = browser.eval(SYNC_PROBE, timeout=180)
    finally:
        browser.close()
    a, b, c = state["a"], state["b"], state["c"]
    assert state["before"] == 0, "no <video> until played: the page opens fast"
    assert len(a) == 2 + 2 + 1, "rgb and depth inputs, two outputs, the generated vis control"
    for v in a + b + c:
        assert v["loop"] and not v["paused"] and not v["ended"] and v["ready"] >= 2, v
        assert v["d"] == pytest.approx(2.0, abs=0.1)
    assert spread(a) < 0.15, ("started together", a)
    assert spread(state["k"]) > 0.5, "knocked out of step"
    assert spread(b) < 0.15, ("pulled back into step", b)
    assert spread(c) < 0.15, ("looped, still together", c)
    assert "playing" in state["cls"] and state["paused"] and state["auto"]
