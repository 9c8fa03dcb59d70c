"""``cosmoskit ui`` is safe by default: loopback only, a token elsewhere, CSRF on every action, nothing
outside the project home served, videos served with range requests; and the pieces it is built from.

These talk HTTP to the real server (uvicorn on a free port) with the standard library; the browser
tests are in test_ui.py.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from conftest import run_cli

pytest.importorskip("starlette", reason="the ui extra is not installed: pip install 'cosmoskit[ui]'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(port: int, method: str, path: str, *, headers: dict[str, str] | None = None,
            body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request to 127.0.0.1 (the path is sent exactly as given: no client-side normalising)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for key, value in {"Host": f"127.0.0.1:{port}", **(headers or {})}.items():
            conn.putheader(key, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture
def server(project: Path):
    from cosmoskit import api
    from cosmoskit._core import context
    from cosmoskit_ui.server import UiServer

    context.reset()
    srv = UiServer(api.settings(), port=free_port(), work=False).start()
    yield srv
    srv.stop()


def form(data: dict[str, str]) -> tuple[dict[str, str], bytes]:
    return {"Content-Type": "application/x-www-form-urlencoded"}, urlencode(data).encode()


# ------------------------------------------------------------------ what is served
def test_nothing_outside_the_home_is_served(server, project, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours")
    (project / "outputs").mkdir()
    (project / "outputs" / "hello.txt").write_text("hello")
    (project / "outputs" / "escape").symlink_to(outside)
    (project / "outputs" / "escape-dir").symlink_to(tmp_path, target_is_directory=True)
    (project / ".hidden").write_text("hidden")
    port = server.port
    assert request(port, "GET", "/files/outputs/hello.txt")[2] == b"hello"
    refused = [
        "/files/../secret.txt", "/files/../../etc/passwd", "/files/%2e%2e/secret.txt", "/files/%2e%2e%2fsecret.txt",
        "/files/outputs/../../secret.txt", "/files/outputs/%2e%2e/%2e%2e/secret.txt", "/files//etc/passwd",
        "/files/%2fetc%2fpasswd", "/files/outputs/escape", "/files/outputs/escape-dir/secret.txt",
        "/files/ledger/meta.json", "/files/.hidden", "/files/outputs/..%5c..%5csecret.txt", "/files/outputs",
        "/files/outputs/hello.txt%00.mp4", f"/files/{outside}", "/static/../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/secret.txt", "/media/run/..%2f..%2fsecret/thumb.jpg",
        "/media/prompt/ps_nothing/rgb/thumb.jpg",
    ]
    for path in refused:
        status, _, body = request(port, "GET", path)
        assert status in (400, 404), (path, status)
        assert b"not yours" not in body and b"root:" not in body, path


def test_videos_are_served_with_range_requests(server, project, videos):
    (project / "outputs").mkdir()
    clip = project / "outputs" / "clip.mp4"
    clip.write_bytes(Path(videos["lone"]).read_bytes())
    size = clip.stat().st_size
    status, headers, body = request(server.port, "GET", "/files/outputs/clip.mp4", headers={"Range": "bytes=100-199"})
    assert status == 206
    assert headers["content-range"] == f"bytes 100-199/{size}"
    assert body == clip.read_bytes()[100:200]
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-type"] == "video/mp4"


# ------------------------------------------------------------------ token, host, CSRF
def test_loopback_needs_no_token_but_checks_host_and_csrf(server):
    port = server.port
    assert request(port, "GET", "/queue")[0] == 200
    # a page elsewhere that rebinds its own name to 127.0.0.1 still says its own name in Host
    assert request(port, "GET", "/queue", headers={"Host": "evil.example:80"})[0] == 400
    headers, body = form({"ids": "rs_x"})
    assert request(port, "POST", "/actions/queue/pause", headers=headers, body=body)[0] == 403
    guessed = {**headers, "X-CSRF-Token": "guess"}
    assert request(port, "POST", "/actions/queue/pause", headers=guessed, body=body)[0] == 403
    # the right token from another origin is refused too
    good = {**headers, "X-CSRF-Token": server.guard.csrf}
    assert request(port, "POST", "/actions/queue/pause", headers={**good, "Origin": "http://evil.example"},
                   body=body)[0] == 403
    assert not server.ctx.view.get().paused
    status, _, answer = request(port, "POST", "/actions/queue/pause", headers={**good, "X-Requested-With": "fetch"},
                                body=body)
    assert status == 200 and json.loads(answer)["ok"] is True
    # the form field works like the header (a page without JavaScript)
    headers, body = form({"csrf": server.guard.csrf})
    status, resp_headers, _ = request(port, "POST", "/actions/queue/resume", headers=headers, body=body)
    assert status == 303 and resp_headers["location"] == "/"
    with server.ctx.ledger.read() as tx:
        assert not (tx.meta_get("queue") or {}).get("paused")


def test_token_is_enforced_on_a_non_local_bind(project):
    """The real command on 0.0.0.0 prints a URL with its token; without the token nothing answers (only
    loopback is ever contacted)."""
    port = free_port()
    exe = Path(sys.executable).with_name("cosmoskit")
    proc = subprocess.Popen([str(exe), "ui", "--host", "0.0.0.0", "--port", str(port)], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        lines: list[str] = []
        # a thread reads the output: select() on a buffered pipe misses lines already read into its buffer
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
        assert proc.stdout is not None
        reader.start()
        token = None
        deadline = time.monotonic() + 60
        while token is None and time.monotonic() < deadline:
            m = re.search(r"\?token=([\w-]+)", "".join(lines))
            token = m.group(1) if m else None
            time.sleep(0.05)
        seen = "".join(lines)
        assert token, seen
        while time.monotonic() < deadline:  # the URL is printed before uvicorn listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        assert request(port, "GET", "/queue")[0] == 403
        assert request(port, "GET", "/events")[0] == 403
        assert request(port, "GET", "/queue?token=wrong")[0] == 403
        assert request(port, "GET", "/queue", headers={"Cookie": "cosmoskit_ui_token=wrong"})[0] == 403
        status, headers, _ = request(port, "GET", f"/queue?token={token}")
        assert status == 303 and headers["location"] == "/queue"  # the token leaves the address bar
        cookie = headers["set-cookie"].split(";")[0]
        assert "httponly" in headers["set-cookie"].lower()
        assert request(port, "GET", "/queue", headers={"Cookie": cookie})[0] == 200
        assert request(port, "GET", "/runs", headers={"Authorization": f"token {token}"})[0] == 200
        # with the token, an action still needs the CSRF token of a page
        h, body = form({})
        assert request(port, "POST", "/actions/queue/pause", headers={**h, "Cookie": cookie}, body=body)[0] == 403
        page = request(port, "GET", "/queue", headers={"Cookie": cookie})[2].decode()
        csrf = re.search(r'name="csrf" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        ok = request(port, "POST", "/actions/queue/pause", headers={**h, "Cookie": cookie, "X-CSRF-Token": csrf},
                     body=body)
        assert ok[0] == 303
        assert json.loads(run_cli("queue", "list", "--json", cwd=project).stdout)["paused"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# ------------------------------------------------------------------ the command
def test_without_the_extra_ui_says_how_to_install_it(project, cli, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("starlette", "uvicorn") else real(name, *a))
    result = cli("ui")
    assert result.exit_code == 1
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result
    assert "pip install 'cosmoskit[ui]'" in lines[0] and "starlette" in lines[0]


def test_help_does_not_import_the_web_stack(project):
    code = ("import sys\nfrom cosmoskit import _cli\ntry:\n    _cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('starlette', 'uvicorn', 'jinja2', 'multipart', 'cosmoskit_ui.server') "
            "if m in sys.modules]\nprint('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout[-500:] + out.stderr[-500:]
    assert " ui " in out.stdout


# ------------------------------------------------------------------ pieces
@pytest.mark.parametrize("text, seeds", [
    ("", [None]), ("7", [7]), ("1, 2, 3", [1, 2, 3]), ("1-3 10", [1, 2, 3, 10]), ("5..6", [5, 6]),
])
def test_seed_lists(text, seeds):
    from cosmoskit_ui.sweep import parse_seeds

    assert parse_seeds(text) == seeds


# a repeat is a mistake, as on the command line
@pytest.mark.parametrize("text", ["x", "3-1", "1-100000", "1.5", "1, 2, 2"])
def test_bad_seed_lists(text):
    from cosmoskit import CosmoskitError
    from cosmoskit_ui.sweep import parse_seeds

    with pytest.raises(CosmoskitError):
        parse_seeds(text)


def test_a_sweep_crosses_weight_sets_with_seeds():
    from cosmoskit import CosmoskitError
    from cosmoskit_ui.sweep import parse

    sweep = parse({"w.0.vis": "0.5", "w.0.depth": "0", "w.3.depth": "1", "w.3.seg": "0.25", "seeds": "1-2",
                   "num_steps": "20", "priority": "3"})
    assert sweep.weight_sets == [{"vis": 0.5}, {"depth": 1.0, "seg": 0.25}]
    assert sweep.count == 4
    assert sweep.variations == [{"weights": {"vis": 0.5}, "seed": 1}, {"weights": {"vis": 0.5}, "seed": 2},
                                {"weights": {"depth": 1.0, "seg": 0.25}, "seed": 1},
                                {"weights": {"depth": 1.0, "seg": 0.25}, "seed": 2}]
    assert sweep.params == {"num_steps": 20} and sweep.priority == 3
    with pytest.raises(CosmoskitError, match="at least one control weight"):
        parse({"w.0.vis": "0", "seeds": "1"})
    with pytest.raises(CosmoskitError, match="more than"):
        parse({"w.0.vis": "1", **{f"w.{i}.vis": "1" for i in range(1, 11)}, "seeds": "1-100"})


@pytest.mark.parametrize("name", ["../x.png", "a/../../x.png", "/", "..", "a/\x00b", "~/x"])
def test_upload_names_cannot_leave_their_folder(name):
    from cosmoskit_ui.promptmake import safe_parts

    with pytest.raises(ValueError):
        safe_parts(name)


def test_upload_keeps_the_folder_shape(tmp_path):
    import io

    from cosmoskit_ui.promptmake import upload_folder

    dest = upload_folder(tmp_path, [("shot 1/color.0001.png", io.BytesIO(b"a")),
                                    ("shot 1/depth/0001.png", io.BytesIO(b"b"))])
    assert dest.parent == tmp_path / "uploads" and dest.name.startswith("shot-1-")
    assert (dest / "color.0001.png").read_bytes() == b"a" and (dest / "depth" / "0001.png").read_bytes() == b"b"


@pytest.mark.parametrize("host, header, token, allowed", [
    ("127.0.0.1", "127.0.0.1:8765", None, True), ("127.0.0.1", "localhost:8765", None, True),
    ("127.0.0.1", "[::1]:8765", None, True), ("127.0.0.1", "evil.example", None, False),
    ("127.0.0.1", None, None, False), ("0.0.0.0", "gpu-box.lan:8765", "t", True),
])
def test_host_header_rules(host, header, token, allowed):
    from cosmoskit_ui.security import Guard

    guard = Guard.for_bind(host, 8765)
    assert (guard.token is not None) == (token is not None)
    assert guard.host_allowed(header) is allowed


def test_runs_page_filters_sorts_and_pages_on_the_server():
    from cosmoskit_ui.queries import RunFilter, find_runs
    from cosmoskit_ui.snapshot import Snapshot

    runs: list[Any] = [
        {"id": f"rs_{i:012x}", "prompt_id": "ps_a" if i % 2 else "ps_b", "operation": "transfer",
         "status": "completed" if i % 3 else "failed", "rating": i % 6 or None, "created": f"2026-11-01T00:{i:02d}",
         "params": {}, "error": "CUDA out of memory" if not i % 3 else None}
        for i in range(60)
    ][::-1]
    snap = Snapshot(1, runs, {r["id"]: r for r in runs}, {"ps_a": {"id": "ps_a", "name": "dock", "text": "a dock"},
                                                           "ps_b": {"id": "ps_b", "name": "ramp", "text": "a ramp"}},
                    [], False)

    class Q(dict):
        def getlist(self, key):
            return [self[key]] if key in self else []

    page = find_runs(snap, RunFilter.from_query(Q(status="failed")), per_page=7)
    assert page.total == 20 and page.pages == 3 and len(page.items) == 7
    assert all(r["status"] == "failed" for r in page.items)
    page = find_runs(snap, RunFilter.from_query(Q(q="dock", rating="4", sort="oldest")), per_page=100)
    assert [r["id"] for r in page.items] == sorted(r["id"] for r in runs if r["prompt_id"] == "ps_a"
                                                   and (r["rating"] or 0) >= 4)
    page = find_runs(snap, RunFilter.from_query(Q(q="out of memory", page="99")), per_page=5)
    assert page.page == page.pages == 4
    assert RunFilter.from_query(Q(status="failed", page="2")).query(page=3) == "status=failed&page=3"
