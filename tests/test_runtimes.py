"""The launcher's three runtimes: docker (through the docker-CLI TEST DOUBLE), direct, emulator."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from conftest import configure, docker_calls, fake_transfer1_host, install_docker_double, make_prompt as prompt


def test_docker_runtime_runs_the_contract_command(project, cli, videos, tmp_path):
    state = tmp_path / "docker-state"
    shim = install_docker_double(tmp_path / "bin", state)
    repo, ckpt = tmp_path / "cosmos-transfer1", tmp_path / "ckpt"
    fake_transfer1_host(repo, ckpt)
    configure(project, model={"runtime": "docker", "docker_command": str(shim), "docker_image": "nvcr.io/me/cosmos-transfer1:1.0",
                              "cosmos_repo": str(repo), "checkpoint_dir": str(ckpt), "env": {"HF_HOME": "/data/hf"}},
              executors={"local": {"type": "local", "gpus": "device=0"}})
    pid = prompt(cli, "docker please", videos["scene"])
    result = cli("transfer", pid, "--weights", "vis=0.5,depth=0.5", "--json")
    assert result.exit_code == 0, result
    (run,) = result.json()
    assert run["status"] == "completed", run
    (call,) = [c for c in docker_calls(state) if c[0] == "run"]
    batch_dir = str(project / "batches" / run["batch_id"])
    name = call[call.index("--name") + 1]
    assert name == f"cosmos_transfer_{run['batch_id'][3:11]}"
    assert call[call.index("--gpus") + 1] == "device=0" and "--ipc=host" in call and "--rm" in call
    mounts = [call[i + 1] for i, a in enumerate(call) if a == "-v"]
    assert f"{repo}:/workspace" in mounts and f"{ckpt}:{ckpt}" in mounts and f"{batch_dir}:{batch_dir}" in mounts
    assert call[call.index("-w") + 1] == "/workspace" and "PYTHONPATH=/workspace" in call
    assert "HF_HOME" in call, "the model's env is passed into the container"
    image = call.index("nvcr.io/me/cosmos-transfer1:1.0")
    inner = call[image + 1:]
    assert inner[:5] == ["torchrun", "--nproc_per_node=1", "--nnodes=1", "--node_rank=0",
                         "cosmos_transfer1/diffusion/inference/transfer.py"]
    assert inner[inner.index("--checkpoint_dir") + 1] == str(ckpt)
    assert (project / run["outputs"]["output.mp4"]).is_file()


def test_docker_runtime_cancel_kills_the_container(project, cli, videos, tmp_path):
    import subprocess

    state = tmp_path / "docker-state"
    shim = install_docker_double(tmp_path / "bin", state)
    # the docker double runs the emulator, which takes its timing from the environment docker passes in
    fake_transfer1_host(tmp_path, tmp_path)
    configure(project, model={"runtime": "docker", "docker_command": str(shim), "cosmos_repo": str(tmp_path),
                              "checkpoint_dir": str(tmp_path), "env": {"COSMOS_EMULATOR_SECONDS_PER_CHUNK": "5"}})
    pid = prompt(cli, "docker cancel", videos["scene"])
    client = subprocess.Popen([str(Path(sys.executable).with_name("cosmoskit")), "transfer", pid, "--weights", "vis=1"],
                              cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and not any(c[0] == "run" for c in docker_calls(state)):
        time.sleep(0.1)
    time.sleep(1.0)
    runs = cli("run", "list", "--json").json()
    assert cli("cancel", runs[0]["batch_id"]).exit_code == 0
    client.communicate(timeout=240)
    kills = [c for c in docker_calls(state) if c[0] == "kill"]
    assert kills and kills[0][1].startswith("cosmos_transfer_")
    assert cli("run", "show", runs[0]["id"], "--json").json()["status"] == "cancelled"


def test_direct_runtime_runs_in_the_repo_with_its_torchrun(project, cli, videos, tmp_path):
    repo = tmp_path / "repo"
    fake_transfer1_host(repo, tmp_path)
    seen = tmp_path / "seen.txt"
    emulator = Path(__file__).resolve().parents[1] / "remote" / "cosmos_emulator.py"
    torchrun = tmp_path / "torchrun-double"
    torchrun.write_text(f"#!/bin/sh\n# TEST DOUBLE of torchrun: notes where it ran, then runs the emulator\n"
                        f"echo \"$(pwd) $PYTHONPATH\" > {seen}\nexec {sys.executable} {emulator} torchrun \"$@\"\n")
    torchrun.chmod(0o755)
    configure(project, model={"runtime": "direct", "torchrun": str(torchrun), "cosmos_repo": str(repo),
                              "checkpoint_dir": str(tmp_path)})
    pid = prompt(cli, "direct please", videos["lone"])
    (run,) = cli("transfer", pid, "--weights", "edge=1", "--json").json()
    assert run["status"] == "completed", run
    assert seen.read_text().split() == [str(repo), str(repo)]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def test_a_signal_that_kills_the_timeout_nap_first_is_not_a_timeout(project, cli, videos):
    """Slurm's scancel sends SIGTERM to every process of the job at once; when the launcher's timeout nap
    died first, the watchdog used to wake up, write `timeout` and fail runs that were cancelled (3 of 8
    tries in an outside probe). Kill only the nap, deterministically: the batch must go on untouched."""
    import signal

    from conftest import ledger_batches, ledger_runs, spawn, wait_for

    configure(project, emulator={"seconds_per_chunk": 30}, timeouts={"batch_seconds": 3600})
    pid = prompt(cli, "nap", videos["scene"])
    client = spawn(project, "transfer", pid, "--weights", "vis=1", "--json")
    batch = wait_for(lambda: next((b for b in ledger_batches() if b["state"] == "running"), None))
    folder = Path(batch["handle"]["batch_dir"])
    launcher = int(wait_for(lambda: (folder / "launcher.pid").exists() and (folder / "launcher.pid").read_text()))

    def nap() -> int | None:
        for child in _children(launcher):
            for grandchild in _children(child):
                if Path(f"/proc/{grandchild}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"3600"]:
                    return grandchild
        return None

    os_kill = __import__("os").kill
    os_kill(wait_for(nap), signal.SIGTERM)
    # the watchdog has seen its nap end; give it every chance to (wrongly) stop the batch
    wait_for(lambda: nap() is None)
    time.sleep(1.0)
    assert not (folder / "stop_reason").exists(), "a nap killed by a signal is not a timeout"
    assert cli("cancel", batch["id"]).exit_code == 0
    out, err = client.communicate(timeout=240)
    (run,) = ledger_runs().values()
    assert run["status"] == "cancelled" and run["reason"] == "cancelled", run


def test_a_place_that_cannot_run_the_model_is_refused_before_anything_is_staged(project, cli, videos, tmp_path):
    """An hour into a queue is no time to learn the checkpoints are missing: the place is checked first."""
    import json

    state = tmp_path / "docker-state"
    shim = install_docker_double(tmp_path / "bin", state)
    repo, ckpt = tmp_path / "repo", tmp_path / "ckpt"
    fake_transfer1_host(repo, tmp_path / "elsewhere")  # the repository, but no checkpoints where configured
    configure(project, model={"runtime": "docker", "docker_command": str(shim), "cosmos_repo": str(repo),
                              "checkpoint_dir": str(ckpt), "docker_image": "cosmos:missing"})
    pid = prompt(cli, "not ready", videos["lone"])
    result = cli("transfer", pid, "--weights", "edge=1")
    assert result.exit_code == 1, result
    (line,) = result.stderr.strip().splitlines()
    assert f"local cannot run transfer1: missing the checkpoints in {ckpt}" in line, line
    assert not any(c[0] == "run" for c in docker_calls(state)), "nothing was started"
    (run,) = cli("run", "list", "--json").json()
    assert run["status"] == "queued", "the run waits for a place that can run it"
    status = json.loads(run_cli_json(project, "status", "--json"))
    (entry,) = status
    t1 = next(m for m in entry["models"] if m["model"] == "transfer1")
    assert t1["ready"] is False and [m["what"] for m in t1["missing"]] == [f"the checkpoints in {ckpt}"]


def run_cli_json(project, *args):
    from conftest import run_cli

    proc = run_cli(*args, cwd=project)
    assert proc.returncode == 0, proc
    return proc.stdout
