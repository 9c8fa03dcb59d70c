"""GPU slots end to end on the emulator: one batch per GPU, leases across processes, pinning, staging the
next batch behind a running one, and what status shows.  The model is the CPU emulator; Docker is the
docker-CLI TEST DOUBLE where the exact command matters."""
from __future__ import annotations

import datetime as dt
import signal
from itertools import combinations
from pathlib import Path

from conftest import configure, docker_calls, fake_transfer1_host, install_docker_double, spawn, ssh_executor, wait_for
from conftest import ledger_batches as batches
from conftest import ledger_runs as runs
from conftest import make_prompt as prompt


def queue(cli, pid, weights="vis=1", *extra):
    result = cli("transfer", pid, "--weights", weights, "--queue", "--json", *extra)
    assert result.exit_code == 0, result
    return result.json()[0]["id"]


def model_interval(folder: Path) -> tuple[dt.datetime, dt.datetime]:
    """When the batch's model ran, from the launcher's stamps."""
    def stamp(name):
        return dt.datetime.fromisoformat((folder / name).read_text().strip().replace("Z", "+00:00"))

    return stamp("model_started_at"), stamp("model_exited_at")


def started_batches(home: Path) -> list[dict]:
    return [b for b in batches() if b.get("started")]


def assert_no_gpu_shared(home: Path) -> None:
    """No two batches that held a common GPU ran their models at the same time."""
    ran = started_batches(home)
    for a, b in combinations(ran, 2):
        if a["executor"] != b["executor"] or not set(a["devices"]) & set(b["devices"]):
            continue
        (s1, e1), (s2, e2) = model_interval(home / "batches" / a["id"]), model_interval(home / "batches" / b["id"])
        assert e1 <= s2 or e2 <= s1, f"{a['id']} and {b['id']} ran on GPU {a['devices']} at once"


def test_one_batch_per_gpu_pinned_and_staged(project, cli, videos):
    configure(project, emulator={"seconds_per_chunk": 1.5}, executors={"local": {"type": "local", "gpus": 2}})
    pid = prompt(cli, "two gpus", videos["scene"])
    ids = [queue(cli, pid) for _ in range(6)]
    w = spawn(project, "worker", "--once", "--strategy", "single")
    # both GPUs busy at once: counted in the ledger, not timed
    both = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(
        [b for b in batches() if b["state"] == "running"]), timeout=180)
    assert sorted(d for b in both for d in b["devices"]) == ["0", "1"]
    _out, err = w.communicate(timeout=300)
    assert w.returncode == 0, err
    assert all(runs()[i]["status"] == "completed" and runs()[i]["attempts"] == 1 for i in ids)
    assert "staged batch" in err and "started staged batch" in err, err
    for b in started_batches(project):
        env = (project / "batches" / b["id"] / "launch.env").read_text()
        assert b["pinned"] and f"export CUDA_VISIBLE_DEVICES={b['devices'][0]}\n" in env
        assert f"GPUs {b['devices'][0]}" in (project / "batches" / b["id"] / "batch.log").read_text()
    assert_no_gpu_shared(project)


def test_two_workers_and_a_foreground_transfer_never_share_a_gpu(project, cli, videos):
    configure(project, emulator={"seconds_per_chunk": 1}, executors={"local": {"type": "local", "gpus": 1}})
    pid = prompt(cli, "one gpu", videos["scene"])
    ids = [queue(cli, pid) for _ in range(5)]
    workers = [spawn(project, "worker", "--strategy", "single") for _ in range(2)]
    try:
        wait_for(lambda: any(b["state"] == "running" for b in batches()), timeout=180)
        # the foreground command finds the only GPU taken: it says so, waits, and then runs
        result = cli("transfer", pid, "--weights", "depth=1")
        assert result.exit_code == 0, result
        assert "waiting for a free GPU slot" in result.output
        wait_for(lambda: all(runs()[i]["status"] == "completed" for i in ids), timeout=300)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.communicate(timeout=240)
    assert_no_gpu_shared(project)
    assert len(started_batches(project)) == 6


def test_a_staged_batch_cancels_at_once_and_a_stopped_worker_gives_its_runs_back(project, cli, videos):
    configure(project, emulator={"seconds_per_chunk": 3}, executors={"local": {"type": "local", "gpus": 1}})
    pid = prompt(cli, "staged", videos["scene"])
    first, second, third = (queue(cli, pid) for _ in range(3))
    w = spawn(project, "worker", "--strategy", "single")
    try:
        staged = wait_for(lambda: next((b for b in batches() if b["state"] == "staged"), None), timeout=180)
        (victim,) = staged["runs"]
        assert staged["after"] == runs()[first]["batch_id"]
        result = cli("cancel", victim, "--json")
        assert result.exit_code == 0 and result.json()["stopping"] is False, result
        assert runs()[victim]["status"] == "cancelled"
        # the worker stages the next run behind the same running batch
        other = third if victim == second else second
        wait_for(lambda: runs()[other]["status"] == "staging", timeout=180)
    finally:
        w.send_signal(signal.SIGTERM)
        _out, err = w.communicate(timeout=240)
    assert "never started" in err, err
    back = runs()[other]
    assert back["status"] == "queued" and back["attempts"] == 0 and not back.get("batch_id"), back
    assert runs()[first]["status"] in ("running", "fetching", "completed"), "the running batch goes on"
    cli("worker", "--once")  # reattaches to the running batch, then runs the rest
    final = runs()
    assert final[first]["status"] == final[other]["status"] == "completed"
    assert final[first]["attempts"] == 1 and final[other]["attempts"] == 1


def test_a_killed_workers_staged_batch_returns_its_runs(project, cli, videos):
    configure(project, emulator={"seconds_per_chunk": 3}, executors={"local": {"type": "local", "gpus": 1}})
    pid = prompt(cli, "killed with a staged batch", videos["scene"])
    ids = [queue(cli, pid) for _ in range(2)]
    w = spawn(project, "worker", "--strategy", "single")
    staged = wait_for(lambda: next((b for b in batches() if b["state"] == "staged"), None), timeout=180)
    w.send_signal(signal.SIGKILL)
    w.communicate(timeout=60)
    status = cli("status", "--json")  # looks at orphaned batches first
    assert status.exit_code == 0, status
    (run_id,) = staged["runs"]
    assert runs()[run_id]["status"] == "queued" and runs()[run_id]["attempts"] == 0
    (entry,) = status.json()
    (gpu,) = entry["slots"]
    running = next(b for b in batches() if b["state"] == "running")
    assert gpu["batch"] == running["id"] and gpu["staged"] is None, gpu
    assert gpu["since"] and gpu["finish"] and gpu["finish"] > gpu["since"]
    human = cli("status")
    assert f"GPU 0  {running['id']}" in human.output and "done about" in human.output
    cli("worker", "--once")
    assert all(runs()[i]["status"] == "completed" for i in ids)


def test_docker_pins_a_two_gpu_batch_with_the_quoted_device_list(project, cli, videos, tmp_path):
    state = tmp_path / "docker-state"
    shim = install_docker_double(tmp_path / "bin", state)
    fake_transfer1_host(tmp_path / "repo", tmp_path / "ckpt")
    configure(project, model={"runtime": "docker", "docker_command": str(shim),
                              "cosmos_repo": str(tmp_path / "repo"), "checkpoint_dir": str(tmp_path / "ckpt")},
              executors={"local": {"type": "local", "gpus": "2,3,5"}})
    pid = prompt(cli, "two per batch", videos["scene"])
    result = cli("transfer", pid, "--weights", "vis=1", "--num-gpus", "2", "--json")
    assert result.exit_code == 0, result
    (call,) = [c for c in docker_calls(state) if c[0] == "run"]
    assert call[call.index("--gpus") + 1] == '"device=2,3"', "docker reads the value as CSV: the list is quoted"
    (batch,) = batches()
    assert batch["devices"] == ["2", "3"] and batch["pinned"]


def test_a_model_needing_more_gpus_than_the_place_has_is_refused_in_one_line(project, cli, videos):
    configure(project, executors={"local": {"type": "local", "gpus": 2}})
    pid = prompt(cli, "too big", videos["scene"])
    result = cli("transfer", pid, "--weights", "vis=1", "--num-gpus", "4")
    assert result.exit_code != 0
    assert "local has 2 GPU(s); transfer1 there needs 4 per batch" in result.output, result
    assert all(r["status"] != "running" for r in runs().values())


def test_slots_over_ssh_are_pinned_on_the_host(project, cli, videos, sshd, tmp_path):
    configure(project, emulator={"seconds_per_chunk": 1.5}, default_executor="gpu-host",
              executors={"gpu-host": ssh_executor(sshd, tmp_path, gpus=2)})
    pid = prompt(cli, "ssh slots", videos["scene"])
    ids = [queue(cli, pid) for _ in range(4)]
    w = spawn(project, "worker", "--once", "--strategy", "single")
    wait_for(lambda: len([b for b in batches() if b["state"] == "running"]) == 2, timeout=180)
    _out, err = w.communicate(timeout=300)
    assert w.returncode == 0, err
    assert all(runs()[i]["status"] == "completed" for i in ids)
    for b in started_batches(project):
        assert f"GPUs {b['devices'][0]}" in (project / "batches" / b["id"] / "batch.log").read_text()
    assert_no_gpu_shared(project)  # the launcher's stamps came back with the outputs
