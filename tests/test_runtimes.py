"""The launcher's three runtimes: docker (through the docker-CLI TEST DOUBLE), direct, emulator."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from conftest import configure, docker_calls, fake_transfer1_host, install_docker_double
from conftest import make_prompt as prompt


def test_docker_runtime_runs_the_contract_command(project, cli, videos, tmp_path):
    state = tmp_path / "docker-state"
    shim = install_docker_double(tmp_path / "bin", state)
    repo, ckpt = tmp_path / "cosmos-transfer1", tmp_path / "ckpt"
    fake_transfer1_host(repo, ckpt)
    configure(project, model={"runtime": "docker", "docker_command": str(shim),
                              "docker_image": "nvcr.io/me/cosmos-transfer1:1.0", "cosmos_repo": str(repo),
                              "checkpoint_dir": str(ckpt), "env": {"HF_HOME": "/data/hf"}},
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
    _out, _err = client.communicate(timeout=240)
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


# ---------------------------------------------------------------------- Transfer 2.5 and Cosmos 3
def fake_gpu_host(bin_dir: Path, memory_mib: int = 81559, count: int = 1) -> None:
    """A TEST DOUBLE of nvidia-smi on PATH answering the memory query the host checks ask."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\n# TEST DOUBLE of nvidia-smi: GPUs with this much memory (MiB)\n"
                   + "".join(f"echo {memory_mib}\n" for _ in range(count)))
    smi.chmod(0o755)


def model_host(tmp_path: Path, script: str) -> dict[str, Path]:
    """The repository (the files status checks), the cache with a token login, and an env file with HF_TOKEN."""
    repo, cache = tmp_path / "repo", tmp_path / "cache"
    (repo / script).parent.mkdir(parents=True, exist_ok=True)
    (repo / script).write_text("# stand-in: the model is the emulator here\n")
    (cache / "huggingface").mkdir(parents=True)
    env_file = tmp_path / "hf.env"
    env_file.write_text("HF_TOKEN=hf_secret_token_for_tests\n")
    return {"repo": repo, "cache": cache, "env_file": env_file}


MODELS = [("transfer2.5", "transfer2.5", "examples/inference.py", ["python", "examples/inference.py"]),
          ("cosmos3-nano", "cosmos3", "cosmos_framework/scripts/inference.py",
           ["python", "-m", "cosmos_framework.scripts.inference"])]


@pytest.mark.parametrize("model, section, script, head", MODELS)
def test_docker_line_of_the_newer_models(project, cli, videos, tmp_path, monkeypatch, model, section, script, head):
    """The documented line (docs/models/transfer2.5.md §2, cosmos3.md §2): the repo at /workspace with its own
    .venv volume, the cache at /root/.cache, --ipc=host, --runtime=nvidia; the token through --env-file only."""
    state = tmp_path / "docker-state"
    shim = install_docker_double(tmp_path / "bin", state)
    fake_gpu_host(tmp_path / "gpu-bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'gpu-bin'}:{os.environ['PATH']}")
    host = model_host(tmp_path, script)
    configure(project, model={"runtime": "docker", "docker_command": str(shim)},
              **{section: {"repo": str(host["repo"]), "cache_dir": str(host["cache"]),
                           "env_file": str(host["env_file"]), "docker_image": "me/model:1"}})
    pid = prompt(cli, "docker please", videos["scene"])
    result = cli("transfer", pid, "--model", model, "--weights", "edge=1", "--json")
    assert result.exit_code == 0, result
    (run,) = result.json()
    assert run["status"] == "completed", run
    (call,) = [c for c in docker_calls(state) if c[0] == "run"]
    batch_dir = str(project / "batches" / run["batch_id"])
    mounts = [call[i + 1] for i, a in enumerate(call) if a == "-v"]
    assert mounts == [f"{host['repo']}:/workspace", "/workspace/.venv", f"{host['cache']}:/root/.cache",
                      f"{batch_dir}:{batch_dir}"]
    assert "--ipc=host" in call and "--runtime=nvidia" in call and call[call.index("-w") + 1] == "/workspace"
    assert call[call.index("--env-file") + 1] == str(host["env_file"])
    everything = json.dumps(docker_calls(state)) + (project / "batches" / run["batch_id"] / "launch.env").read_text()
    everything += (project / "batches" / run["batch_id"] / "command.json").read_text()
    assert "hf_secret_token_for_tests" not in everything, "the token is never on a command line or in a file we write"
    inner = call[call.index("me/model:1") + 1:]
    assert inner[:len(head)] == head
    status = json.loads(run_cli_json(project, "status", "--json"))[0]
    ready = next(m for m in status["models"] if m["model"] == model)
    assert ready["ready"] is True and ready["checked"] >= 5, ready


@pytest.mark.parametrize("model, section, script, head", MODELS)
def test_a_host_without_the_gpu_memory_or_token_is_refused_in_one_line(project, cli, videos, tmp_path, monkeypatch,
                                                                       model, section, script, head):
    state = tmp_path / "docker-state"
    shim = install_docker_double(tmp_path / "bin", state)
    fake_gpu_host(tmp_path / "gpu-bin", memory_mib=46068)  # a 48 GB card
    monkeypatch.setenv("PATH", f"{tmp_path / 'gpu-bin'}:{os.environ['PATH']}")
    host = model_host(tmp_path, script)
    configure(project, model={"runtime": "docker", "docker_command": str(shim)},
              **{section: {"repo": str(host["repo"]), "cache_dir": str(host["cache"])}})
    pid = prompt(cli, "not ready", videos["scene"])
    result = cli("transfer", pid, "--model", model, "--weights", "edge=1")
    assert result.exit_code == 1, result
    (line,) = result.stderr.strip().splitlines()
    assert f"local cannot run {model}: missing a Hugging Face token" in line and "and 1 more" in line, line
    assert not any(c[0] == "run" for c in docker_calls(state)), "nothing was started"
    status = json.loads(run_cli_json(project, "status", "--json"))[0]
    missing = next(m for m in status["models"] if m["model"] == model)["missing"]
    assert [m["what"].split(" (")[0].split(" with")[0] for m in missing] == ["a Hugging Face token", "1 GPU(s)"]


def test_direct_runtime_runs_the_repos_own_python_and_sources_the_env_file(project, cli, videos, tmp_path,
                                                                          monkeypatch):
    fake_gpu_host(tmp_path / "gpu-bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'gpu-bin'}:{os.environ['PATH']}")
    host = model_host(tmp_path, "examples/inference.py")
    seen = tmp_path / "seen.txt"
    emulator = Path(__file__).resolve().parents[1] / "remote" / "cosmos_emulator.py"
    python = host["repo"] / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\n# TEST DOUBLE of the repository's Python: notes what it sees, runs the emulator\n"
                      f"echo \"$(pwd) $HF_HOME $HF_TOKEN\" > {seen}\nexec {sys.executable} {emulator} python \"$@\"\n")
    python.chmod(0o755)
    configure(project, model={"runtime": "direct"},
              **{"transfer2.5": {"repo": str(host["repo"]), "cache_dir": str(host["cache"]),
                                 "env_file": str(host["env_file"])}})
    pid = prompt(cli, "direct please", videos["lone"])
    (run,) = cli("transfer", pid, "--model", "transfer2.5", "--weights", "edge=1", "--json").json()
    assert run["status"] == "completed", run
    assert seen.read_text().split() == [str(host["repo"]), f"{host['cache']}/huggingface", "hf_secret_token_for_tests"]
    launch = json.loads((project / "batches" / run["batch_id"] / "command.json").read_text())["launch"]
    assert "hf_secret_token_for_tests" not in json.dumps(launch) and str(host["env_file"]) in launch
