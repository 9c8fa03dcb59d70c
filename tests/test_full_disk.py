"""A full disk, for real: the project home on a small tmpfs (mounted by the test, as root), filled up.

An outside probe found a run marked `completed` with a truncated 49 KB output.mp4 after the disk filled
mid-batch, `internal error: OSError` instead of one line, and a `.part` file left in the store.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import FAST, ledger_runs, require, run_cli, spawn, wait_for


@pytest.fixture
def small_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A project whose home is a 3 MB tmpfs; unmounted afterwards."""
    if os.geteuid() != 0:
        require("root, to mount a small tmpfs")
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        require(f"mount -t tmpfs ({proc.stderr.strip()})")
    import yaml

    (mount / "cosmoskit.yaml").write_text(yaml.safe_dump(
        {**FAST, "emulator": {"variation": False, "seconds_per_chunk": 5},
         "worker": {"max_attempts": 3, "backoff_seconds": 0.5}}))
    monkeypatch.chdir(mount)
    from cosmoskit._core import context

    context.reset()
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Eat the free bytes of the filesystem holding ``folder``, all but ``leave``."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)  # unbuffered: nothing left to flush at close
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def prompt_id(home: Path, video: Path, text: str) -> str:
    proc = run_cli("prompt", "create", text, str(video), "--json", cwd=home)
    assert proc.returncode == 0, proc
    return json.loads(proc.stdout)["id"]


def test_a_disk_that_fills_mid_batch_never_yields_a_completed_run_without_a_video_that_decodes(small_home, videos):
    from cosmoskit._core.media import check_video

    pid = prompt_id(small_home, videos["scene"], "full disk")
    ids = []
    for seed in range(4):
        proc = run_cli("transfer", pid, "--weights", "vis=1", "--seed", str(seed), "--queue", "--json", cwd=small_home)
        assert proc.returncode == 0, proc
        ids += [r["id"] for r in json.loads(proc.stdout)]
    worker = spawn(small_home, "worker", "--once", "--strategy", "strict")
    # the model is generating (a chunk takes 5 s): leave less room than its video needs, so the disk fills
    # while it writes output.mp4 — a readable start, no end — and the launcher cannot write exit_code
    wait_for(lambda: any("chunk 1/1" in p.read_text(errors="replace")
                         for p in (small_home / "batches").glob("*/batch.log")), timeout=120)
    filler = fill(small_home, leave=12 * 1024)
    _out, err = worker.communicate(timeout=300)
    assert "internal error" not in err, err
    # a full disk stops a `--once` worker with one line, the runs waiting in the queue
    assert worker.returncode in (1, 3), err
    assert err.strip().splitlines()[-1].startswith("Error: "), err
    for run in ledger_runs().values():
        if run["status"] == "completed":
            video = small_home / run["outputs"]["output.mp4"]
            assert check_video(video) is None, f"{run['id']} completed with a video that does not decode"
    # free the disk: what did not complete runs again, and every run ends completed exactly once
    filler.unlink()
    again = run_cli("worker", "--once", cwd=small_home, timeout=300)
    assert again.returncode in (0, 3), again
    final = ledger_runs()
    assert sorted(final) == sorted(ids), "no run lost, none added"
    for run_id in ids:
        run = final[run_id]
        if run["status"] != "completed":
            assert run["status"] == "failed" and run["error"], run  # failed with a reason, never lost
            continue
        assert check_video(small_home / run["outputs"]["output.mp4"]) is None


def test_staging_onto_a_full_disk_is_one_line_and_leaves_no_part_file(small_home, tmp_path):
    from cosmoskit._core.media import make_test_video

    big = make_test_video(tmp_path / "big" / "color.mp4", width=640, height=360, frames=240, source="testsrc2",
                          extra=["-b:v", "8M"])
    assert big.stat().st_size > 3 * 1024 * 1024, "the input must not fit the small disk"
    pid = prompt_id(small_home, big.parent, "too big to stage")
    proc = run_cli("transfer", pid, "--weights", "vis=1", cwd=small_home)
    assert proc.returncode == 1, proc
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: no space left on the disk holding") and "internal error" not in line, line
    assert not list(small_home.rglob("*.part")), "nothing half-copied is left behind"
    (run,) = ledger_runs().values()
    assert run["status"] == "queued" and "No space left" in run["error"], "the run waits in the queue, not lost"


def test_a_part_file_left_by_a_killed_client_is_removed(project, cli, videos):
    """A client killed mid-copy leaves `store/…mp4.<pid>.part`; the next staging of that input removes it."""
    from cosmoskit._core.media import sha256_file

    video = videos["lone"]
    sha = sha256_file(video)
    store = project / "store" / sha[:2]
    store.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = store / f"{sha}.mp4.{dead.pid}.part"
    stale.write_bytes(b"half a video")
    pid = json.loads(cli("prompt", "create", "stale part", str(video), "--json").stdout)["id"]
    result = cli("transfer", pid, "--weights", "edge=1")
    assert result.exit_code == 0, result
    assert not stale.exists() and (store / f"{sha}.mp4").exists()
