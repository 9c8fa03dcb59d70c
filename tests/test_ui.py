"""``cosmoskit ui`` in real headless Chromium, against the real server, the real worker and the emulator.

Each test starts the very server ``cosmoskit ui --work`` runs (uvicorn on a free loopback port, the
worker in the same process) over a fresh project, drives Chromium with Playwright, and checks what
the command line sees in the same ledger.  Nothing waits on the clock: every wait is for a condition,
with a generous deadline.  Screenshots of each page go to ``$COSMOSKIT_UI_SCREENSHOTS`` (default: a
folder under pytest's temporary directory, printed at the end of the session).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CLIResult, configure, require, run_cli

pytest.importorskip("starlette", reason="the ui extra is not installed: pip install 'cosmoskit[ui]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

pytestmark = pytest.mark.chromium

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--mute-audio"]
WAIT = 60_000  # ms: generous, for a machine with every core busy


# ------------------------------------------------------------------ helpers
def chromium_path() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        require("chromium")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(work: bool = True, port: int | None = None) -> Any:
    from cosmoskit import api
    from cosmoskit._core import context
    from cosmoskit_ui.server import UiServer

    context.reset()
    return UiServer(api.settings(), port=port or free_port(), work=work, host_interval=1.0).start()


def frames_folder(root: Path, frames: int = 8) -> Path:
    """A render as a folder of PNG frames (colour and depth), what an artist drops in."""
    from cosmoskit.api import ffmpeg_exe

    root.mkdir(parents=True)
    for name, source, fmt in (("color", "testsrc2", "rgb24"), ("depth", "gradients", "gray")):
        subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", f"{source}=size=64x36:rate=24",
                        "-frames:v", str(frames), "-pix_fmt", fmt, str(root / f"{name}.%04d.png")], check=True)
    return root


def cli_json(cli: Any, *args: str) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result
    return result.json()


@pytest.fixture
def cli(project: Path) -> Any:
    """The real ``cosmoskit`` in its own process, as a person at a terminal beside the browser runs it
    (in-process it would share the server's plugin registry, which each command loads afresh)."""

    def run(*args: str) -> CLIResult:
        proc = run_cli(*args, cwd=project)
        return CLIResult(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = Path(os.environ.get("COSMOSKIT_UI_SCREENSHOTS") or tmp_path_factory.mktemp("ui-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    print(f"\nUI screenshots: {folder}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    exe = chromium_path()
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def live(pg: Any) -> None:
    """The page is loaded and its change feed is connected."""
    expect(pg.locator("html")).to_have_attribute("data-live-state", "live", timeout=WAIT)


def shot(pg: Any, shots: Path, name: str) -> None:
    pg.screenshot(path=str(shots / f"{name}.png"), full_page=True)


# ------------------------------------------------------------------ the artist's day
def test_folder_to_sweep_to_rating_live(project, cli, page, shots, tmp_path):
    """Create a prompt from a folder of frames, submit a sweep, watch the queue and the running page follow
    the worker, rate a run and see the rating in `cosmoskit run show --json`, and the other way round."""
    # slow enough that a batch is seen running (the emulator's model load and chunk), fast enough for a test
    configure(project, emulator={"variation": False, "load_seconds": 2.0, "seconds_per_chunk": 2.0})
    frames = frames_folder(tmp_path / "render")
    server = start_server()
    try:
        base = f"http://127.0.0.1:{server.port}"
        pg = page
        # pause first, so the sweep waits in the queue where we can look at it
        pg.goto(base + "/queue")
        live(pg)
        pg.click("#pause")
        expect(pg.locator("#queue-state")).to_have_attribute("data-paused", "1", timeout=WAIT)
        expect(pg.locator("#paused-pill")).to_be_visible(timeout=WAIT)
        assert cli_json(cli, "queue", "list")["paused"] is True

        # a prompt from a folder of frames: prepare encodes them, then the prompt is created
        pg.goto(base + "/prompts")
        live(pg)
        shot(pg, shots, "prompts")
        form = pg.locator("#create-from-folder")
        form.locator("input[name=folder]").fill(str(frames))
        form.locator("textarea[name=text]").fill("a forklift crossing a warehouse at dawn")
        form.locator("button").click()
        pg.wait_for_url(re.compile(r"/prompts/ps_"), timeout=WAIT)
        prompt_id = pg.url.rsplit("/", 1)[1]
        assert (frames / "color.mp4").is_file() and (frames / "depth.mp4").is_file()
        listed = cli_json(cli, "prompt", "list")
        assert [p["id"] for p in listed] == [prompt_id]

        # the sweep: two weight sets x two seeds, counted and estimated before anything is queued
        live(pg)
        pg.click("#add-set")
        pg.locator("fieldset.wset").nth(1).locator("input[data-weight=vis]").fill("0.8")
        pg.fill("#seeds", "1-2")
        expect(pg.locator("#estimate")).to_have_attribute("data-runs", "4", timeout=WAIT)
        expect(pg.locator("#estimate")).to_contain_text("GPU time")
        shot(pg, shots, "prompt")
        assert cli_json(cli, "queue", "list")["queue"] == []  # the estimate queued nothing
        pg.click("#submit-sweep")
        pg.wait_for_url(re.compile(r"/queue$"), timeout=WAIT)

        # in the queue at once, for the browser and the command line, with plans and estimates
        rows = pg.locator("#queue-table tbody tr")
        expect(rows).to_have_count(4, timeout=WAIT)
        queued = {r["id"] for r in cli_json(cli, "queue", "list")["queue"]}
        assert len(queued) == 4
        assert {rows.nth(i).get_attribute("data-run") for i in range(4)} == queued
        expect(pg.locator("#plans tr.chosen td").nth(1)).to_have_text("4", timeout=WAIT)
        expect(pg.locator("#queue-table .est-finish").first).not_to_have_text("", timeout=WAIT)
        shot(pg, shots, "queue")

        # a run queued on the command line appears in the open page by itself
        extra = cli_json(cli, "transfer", prompt_id, "--weights", "depth=1", "--seed", "7", "--queue")
        extra_id = extra[0]["id"]
        expect(pg.locator(f"#queue-table tr[data-run={extra_id}]")).to_have_count(1, timeout=WAIT)
        expect(rows).to_have_count(5, timeout=WAIT)

        # the Running page in a second tab, then resume: both pages follow the worker live
        running = pg.context.new_page()
        running.goto(base + "/running")
        live(running)
        expect(running.locator("article.host[data-host=local]")).to_have_attribute("data-state", "up", timeout=WAIT)
        pg.click("#resume")
        expect(running.locator("article.batch").first).to_be_visible(timeout=WAIT)
        expect(running.locator("li[data-status=running]").first).to_be_visible(timeout=WAIT)
        shot(running, shots, "running")
        expect(pg.locator("#queue-empty")).to_be_visible(timeout=WAIT * 3)
        expect(running.locator("#running-empty")).to_be_visible(timeout=WAIT * 3)
        running.close()

        # every run completed; the Runs page lists them (its filters on the server)
        pg.goto(base + "/runs?status=completed")
        live(pg)
        expect(pg.locator("article.card")).to_have_count(5, timeout=WAIT)
        shot(pg, shots, "runs")
        target = sorted(queued)[0]

        # rate it in the browser: the command line sees the rating and the note
        pg.goto(base + f"/runs/{target}")
        live(pg)
        expect(pg.locator("#run-status")).to_have_text("completed")
        for label in ("rgb", "depth", "output.mp4"):  # input, control, output side by side, playing in sync
            expect(pg.locator(f".sync figure[data-label='{label}'] video")).to_have_count(1)
        pg.click("[data-sync-play]")
        expect(pg.locator("[data-sync]")).to_have_attribute("data-playing", "1")
        pg.fill("#note", "best forklift so far")
        pg.click("button[data-star='4']")
        expect(pg.locator("#run-rating")).to_have_attribute("data-rating", "4", timeout=WAIT)
        pg.click("#save-note")
        expect(pg.locator("#run-note")).to_contain_text("best forklift so far", timeout=WAIT)
        shot(pg, shots, "run")
        shown = cli_json(cli, "run", "show", target)
        assert shown["rating"] == 4 and shown["note"] == "best forklift so far"

        # and the other way round: a rating from the command line reaches the open page
        assert cli("run", "rate", target, "2").exit_code == 0
        expect(pg.locator("#run-rating")).to_have_attribute("data-rating", "2", timeout=WAIT)

        # compare two runs side by side
        pg.goto(base + "/runs")
        live(pg)
        others = [r for r in sorted(queued) if r != target][:1]
        for rid in [target, *others]:
            pg.locator(f"article.card[data-run={rid}] input[name=sel]").check()
        pg.click("#compare-selected")
        pg.wait_for_url(re.compile(r"/compare\?ids="), timeout=WAIT)
        expect(pg.locator("#compare-table thead th")).to_have_count(3)
        expect(pg.locator("#compare-table tr.differs")).not_to_have_count(0)
        shot(pg, shots, "compare")
    finally:
        server.stop()


def test_cancel_a_running_run_and_stream_its_log(project, cli, page, shots, videos):
    """A run that is running is cancelled from the Running page; its batch log streams meanwhile."""
    configure(project, emulator={"variation": False, "load_seconds": 600})  # the model "loads" until stopped
    prompt_id = cli_json(cli, "prompt", "create", "a quiet dock", str(videos["scene"]))["id"]
    server = start_server()
    try:
        run_id = cli_json(cli, "transfer", prompt_id, "--queue")[0]["id"]
        base = f"http://127.0.0.1:{server.port}"
        pg = page
        pg.goto(base + "/running")
        live(pg)
        row = pg.locator(f"li[data-run={run_id}]")
        expect(row).to_have_attribute("data-status", "running", timeout=WAIT)
        batch_id = cli_json(cli, "run", "show", run_id)["batch_id"]
        pg.click(f"button[data-open-log={batch_id}]")
        expect(pg.locator("#log-lines")).to_have_attribute("data-stream-state", "open", timeout=WAIT)
        expect(pg.locator("#log-lines")).to_contain_text("cosmos-emulator", timeout=WAIT)
        shot(pg, shots, "running-log")
        pg.click(f"button[data-cancel-run={run_id}]")
        expect(pg.locator("#flash")).to_contain_text("stop requested", timeout=WAIT)
        expect(pg.locator("#running-empty")).to_be_visible(timeout=WAIT)
        expect(pg.locator("#log-lines")).to_have_attribute("data-stream-state", "ended", timeout=WAIT)
        shown = cli_json(cli, "run", "show", run_id)
        assert shown["status"] == "cancelled", shown
        pg.goto(base + f"/runs/{run_id}")
        expect(pg.locator("#run-status")).to_have_text("cancelled")
        pg.click("#retry-run")
        expect(pg.locator("#run-status")).not_to_have_text("cancelled", timeout=WAIT)
        assert cli_json(cli, "run", "show", run_id)["status"] in ("queued", "staging", "running")
        assert cli("cancel", run_id).exit_code == 0
    finally:
        server.stop()


def test_pause_resume_and_priority_both_ways(project, cli, page, videos):
    """Pause in the browser is pause for the command line; resume on the command line shows in the page."""
    prompt_id = cli_json(cli, "prompt", "create", "a ramp", str(videos["scene"]))["id"]
    assert cli("queue", "pause").exit_code == 0
    server = start_server(work=False)
    try:
        runs = cli_json(cli, "transfer", prompt_id, "--seed", "1", "--queue")
        base = f"http://127.0.0.1:{server.port}"
        pg = page
        pg.goto(base + "/queue")
        live(pg)
        expect(pg.locator("#paused-pill")).to_be_visible()
        assert cli("queue", "resume").exit_code == 0
        expect(pg.locator("#queue-state")).to_have_attribute("data-paused", "0", timeout=WAIT)
        expect(pg.locator("#paused-pill")).to_be_hidden(timeout=WAIT)
        pg.click("#pause")
        expect(pg.locator("#queue-state")).to_have_attribute("data-paused", "1", timeout=WAIT)
        assert cli_json(cli, "queue", "list")["paused"] is True
        # priority of a selected run, from the browser
        run_id = runs[0]["id"]
        pg.locator(f"tr[data-run={run_id}] input[name=sel]").check()
        expect(pg.locator("[data-selected-count]")).to_have_text("1")
        pg.locator("form.bulk input[name=priority]").fill("7")
        pg.click("#priority-selected")
        expect(pg.locator(f"tr[data-run={run_id}] td.prio")).to_have_text("7", timeout=WAIT)
        assert cli_json(cli, "run", "show", run_id)["priority"] == 7
        # launch it now from the browser although the queue is paused: one batch, followed to the end
        pg.locator(f"tr[data-run={run_id}] input[name=sel]").check()
        pg.click("#launch-selected")
        expect(pg.locator("#flash")).to_contain_text("Launched batch", timeout=WAIT)
        expect(pg.locator("#queue-empty")).to_be_visible(timeout=WAIT)
        pg.goto(base + f"/runs/{run_id}")
        expect(pg.locator("#run-status")).to_have_text("completed", timeout=WAIT)
        assert cli_json(cli, "run", "show", run_id)["status"] == "completed"
    finally:
        server.stop()


def test_change_feed_reconnects_after_a_drop_and_a_restart(project, cli, page, videos):
    """A dropped event stream comes back by itself, and so does one whose server restarted; what changed
    meanwhile is on the page afterwards."""
    prompt_id = cli_json(cli, "prompt", "create", "a shelf", str(videos["scene"]))["id"]
    assert cli("queue", "pause").exit_code == 0
    server = start_server(work=False)
    port = server.port
    base = f"http://127.0.0.1:{port}"
    pg = page
    try:
        pg.goto(base + "/queue")
        live(pg)
        expect(pg.locator("html")).to_have_attribute("data-sse-opened", "1")
        server.ctx.hub.drop_all()  # the server ends every open stream
        expect(pg.locator("html")).to_have_attribute("data-sse-opened", "2", timeout=WAIT)
        live(pg)
        first = cli_json(cli, "transfer", prompt_id, "--seed", "1", "--queue")[0]["id"]
        expect(pg.locator(f"tr[data-run={first}]")).to_have_count(1, timeout=WAIT)
    finally:
        server.stop()
    expect(pg.locator("html")).to_have_attribute("data-live-state", "reconnecting", timeout=WAIT)
    second = cli_json(cli, "transfer", prompt_id, "--seed", "2", "--queue")[0]["id"]  # while no server runs
    server = start_server(work=False, port=port)
    try:
        expect(pg.locator("html")).to_have_attribute("data-sse-opened", "3", timeout=WAIT)
        live(pg)
        expect(pg.locator(f"tr[data-run={second}]")).to_have_count(1, timeout=WAIT)
    finally:
        server.stop()


def test_upload_a_folder_enhance_and_delete_with_preview(project, cli, page, shots, tmp_path):
    """Upload a folder of frames from the browser, enhance the prompt, then delete it after the preview."""
    frames = frames_folder(tmp_path / "shot_010")
    server = start_server()
    try:
        base = f"http://127.0.0.1:{server.port}"
        pg = page
        pg.goto(base + "/prompts")
        live(pg)
        form = pg.locator("#create-from-upload")
        form.locator("#upload-files").set_input_files(str(frames))
        form.locator("textarea[name=text]").fill("an empty loading bay")
        form.locator("button").click()
        pg.wait_for_url(re.compile(r"/prompts/ps_"), timeout=WAIT)
        prompt_id = pg.url.rsplit("/", 1)[1]
        record = cli_json(cli, "prompt", "show", prompt_id)
        uploaded = Path(record["inputs"]["rgb"]["path"])
        assert uploaded.is_relative_to(project / "uploads"), uploaded
        assert "depth" in record["inputs"]
        live(pg)
        pg.click("#enhance")
        expect(pg.locator("#flash")).to_contain_text("Queued enhance run", timeout=WAIT)
        enhance_id = re.search(r"rs_\w+", pg.inner_text("#flash")).group(0)  # type: ignore[union-attr]
        pg.goto(base + f"/runs/{enhance_id}")
        expect(pg.locator("#run-status")).to_have_text("completed", timeout=WAIT)
        expect(pg.locator("#enhanced-text")).to_contain_text("an empty loading bay")
        shot(pg, shots, "enhance")
        pg.goto(base + f"/prompts/{prompt_id}")
        pg.click("#delete-prompt")
        expect(pg.locator("#delete-what")).to_contain_text("1 prompt(s)")
        expect(pg.locator("#delete-what")).to_contain_text("1 run(s)")
        shot(pg, shots, "delete")
        pg.click("#confirm-delete")
        pg.wait_for_url(re.compile(r"/prompts$"), timeout=WAIT)
        ids = {p["id"] for p in cli_json(cli, "prompt", "list")}
        assert prompt_id not in ids
        assert cli("run", "show", enhance_id).exit_code == 1
    finally:
        server.stop()
