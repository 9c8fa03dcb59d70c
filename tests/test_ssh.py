"""The SSH executor against a real OpenSSH server on 127.0.0.1 (the remote side runs the emulator)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (
    configure,
    docker_calls,
    fake_transfer1_host,
    install_docker_double,
    run_cli,
    running_batch,
    spawn,
    ssh_executor,
    wait_for,
)
from conftest import ledger_batches as batches
from conftest import ledger_runs as runs
from conftest import make_prompt as prompt

pytestmark = pytest.mark.sshd


def setup(project, sshd, tmp_path, emulator=None, timeouts=None, **extra):
    configure(project, default_executor="gpu1", executors={"gpu1": ssh_executor(sshd, tmp_path, **extra)},
              emulator=emulator or {}, timeouts=timeouts or {})


def test_unknown_and_changed_host_keys_are_refused(project, cli, videos, sshd, tmp_path):
    setup(project, sshd, tmp_path, trusted=False)
    pid = prompt(cli, "keys", videos["lone"])
    result = cli("transfer", pid, "--weights", "edge=1")
    assert result.exit_code == 1
    assert "is not in" in result.stderr and "cosmoskit host trust gpu1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    (run,) = runs().values()
    assert run["status"] == "queued" and "launch failed" in run["error"], "nothing lost: the run waits in the queue"
    # in a process of its own, too: nothing of paramiko's logging reaches the terminal
    proc = run_cli("transfer", pid, "--weights", "edge=1", cwd=project)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Socket exception" not in proc.stderr
    # trust shows the fingerprint and records it
    fp = subprocess.run(["ssh-keygen", "-lf", str(sshd.folder / "host_key.pub")], capture_output=True,
                        text=True).stdout.split()[1]
    result = cli("host", "trust", "gpu1", "--yes")
    assert result.exit_code == 0 and fp in result.stdout, result
    assert f"[127.0.0.1]:{sshd.port} ssh-ed25519" in (tmp_path / "known_hosts").read_text()
    assert cli("transfer", pid, "--weights", "edge=1", "--json").json()[0]["status"] == "completed"
    # a changed key: refused, with the way out
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    kind, blob = (tmp_path / "other.pub").read_text().split()[:2]
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")
    result = cli("transfer", pid, "--weights", "edge=1")
    assert result.exit_code == 1 and "CHANGED" in result.stderr and "--replace" in result.stderr
    assert "CHANGED" in cli("host", "trust", "gpu1", "--yes").stderr
    assert cli("host", "trust", "gpu1", "--yes", "--replace").exit_code == 0


def test_single_batch_upscale_enhance_over_ssh_and_dedupe(project, cli, videos, sshd, tmp_path):
    setup(project, sshd, tmp_path)
    pids = [prompt(cli, f"remote {i}", videos["scene"]) for i in range(3)]
    (single,) = cli("transfer", pids[0], "--weights", "vis=0.5,depth=0.5", "--json").json()
    assert single["status"] == "completed", single
    assert (project / single["outputs"]["output.mp4"]).is_file()
    first = batches()[0]
    assert first["handle"]["host"] == "127.0.0.1" and first["handle"]["batch_dir"].startswith(str(tmp_path / "remote"))
    assert first["staging"]["inputs_sent"] == 2 and first["staging"]["bytes_sent"] > 0
    three = cli("transfer", *pids, "--weights", "vis=0.5,depth=0.5", "--json").json()
    assert [r["status"] for r in three] == ["completed"] * 3 and len({r["batch_id"] for r in three}) == 1
    second = next(b for b in batches() if b["id"] == three[0]["batch_id"])
    assert second["staging"]["bytes_sent"] == 0 and second["staging"]["inputs_reused"] == 2, (
        "bytes already there are never sent again")
    for i, r in enumerate(three):
        assert (project / "outputs" / f"run_{r['id']}" / "prompt.txt").read_text().startswith(f"remote {i}")
    (up,) = cli("upscale", "--from-run", single["id"], "--json").json()
    assert up["status"] == "completed" and (project / up["outputs"]["upscaled.mp4"]).is_file()
    (en,) = cli("enhance", pids[1], "--json").json()
    assert en["status"] == "completed" and en["result_prompt"]


def test_hostile_prompt_text_and_paths(project, cli, videos, sshd, tmp_path):
    odd = tmp_path / "in dir 'q' $(touch hacked) `x`"
    odd.mkdir()
    video = odd / "vidéo ñ \"q\".mp4"
    video.write_bytes(videos["lone"].read_bytes())
    remote_dir = tmp_path / "remote root 'x' $(touch hacked2) `y`"
    setup(project, sshd, tmp_path, remote_dir=str(remote_dir))
    text = 'Quotes \' " and $(touch /tmp/pwned-cosmoskit) `id` ; rm -rf nothing\nnew line — naïve café 東京'
    pid = prompt(cli, text, video)
    (run,) = cli("transfer", pid, "--weights", "edge=1", "--json").json()
    assert run["status"] == "completed", run
    assert (project / "outputs" / f"run_{run['id']}" / "prompt.txt").read_text(encoding="utf-8").startswith(text)
    assert not (Path.cwd() / "hacked").exists() and not Path("/tmp/pwned-cosmoskit").exists()
    assert not any(p.name.startswith("hacked") for p in tmp_path.rglob("hacked*"))
    assert remote_dir.is_dir()


def test_interrupted_upload_resumes_and_corrupt_store_is_replaced(project, cli, videos, sshd, tmp_path):
    setup(project, sshd, tmp_path)
    big = tmp_path / "big.mp4"
    big.write_bytes(videos["lone"].read_bytes())
    pid = prompt(cli, "resume me", big)
    from cosmoskit._core import context

    with context.ledger().read() as tx:
        item = tx.prompt(pid)["inputs"]["rgb"]
    sha, size = item["sha256"], item["bytes"]
    store = tmp_path / "remote" / "store" / sha[:2]
    store.mkdir(parents=True)
    half = size // 2
    (store / f"{sha}.mp4.part").write_bytes(big.read_bytes()[:half])  # a transfer cut off halfway
    (run,) = cli("transfer", pid, "--weights", "edge=1", "--json").json()
    assert run["status"] == "completed", run
    figures = batches()[-1]["staging"]
    assert figures["bytes_resumed"] == half and figures["bytes_sent"] == size - half
    assert (store / f"{sha}.mp4").read_bytes() == big.read_bytes()
    # a partial upload holding wrong bytes is detected by its hash and sent again whole
    (store / f"{sha}.mp4").unlink()
    (store / f"{sha}.mp4.part").write_bytes(b"\0" * half)
    assert cli("transfer", pid, "--weights", "edge=1", "--json").json()[0]["status"] == "completed"
    assert (store / f"{sha}.mp4").read_bytes() == big.read_bytes()
    # a stored file corrupted on the host is detected and replaced
    data = bytearray((store / f"{sha}.mp4").read_bytes())
    data[100:110] = b"corrupted!"
    (store / f"{sha}.mp4").write_bytes(bytes(data))
    assert cli("transfer", pid, "--weights", "edge=1", "--json").json()[0]["status"] == "completed"
    assert batches()[-1]["staging"]["inputs_sent"] == 1
    assert (store / f"{sha}.mp4").read_bytes() == big.read_bytes()


def test_client_killed_then_reattached_and_sshd_restarted_mid_run(project, cli, videos, sshd, tmp_path):
    setup(project, sshd, tmp_path, emulator={"seconds_per_chunk": 4})
    pid = prompt(cli, "long remote run", videos["scene"])
    proc = spawn(project, "transfer", pid, "--weights", "vis=1")
    wait_for(running_batch)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sshd.stop()  # the network goes away too
    time.sleep(1.0)
    sshd.start()
    result = cli("attach", "--json")
    assert result.exit_code == 0, result
    (run,) = runs().values()
    assert run["status"] == "completed" and len(batches()) == 1, "reattached, never relaunched"
    assert (project / run["outputs"]["output.mp4"]).is_file()
    assert "model exited with code 0" in (project / "outputs" / f"run_{run['id']}" / "logs" / "batch.log").read_text()


def test_follow_survives_an_sshd_restart(project, cli, videos, sshd, tmp_path):
    setup(project, sshd, tmp_path, emulator={"seconds_per_chunk": 4})
    pid = prompt(cli, "network blip", videos["scene"])
    proc = spawn(project, "transfer", pid, "--weights", "vis=1", "--json")
    wait_for(running_batch)
    sshd.stop()
    time.sleep(2.0)
    sshd.start()
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    (run,) = json.loads(out)
    assert run["status"] == "completed" and len(batches()) == 1


def test_host_reboot_requeues_runs(project, cli, videos, sshd, tmp_path):
    setup(project, sshd, tmp_path, emulator={"seconds_per_chunk": 20})
    pid = prompt(cli, "rebooted", videos["scene"])
    proc = spawn(project, "transfer", pid, "--weights", "vis=1")
    batch = wait_for(running_batch)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    folder = Path(batch["handle"]["batch_dir"])
    launcher = int(wait_for(lambda: (folder / "launcher.pid").exists()
                            and (folder / "launcher.pid").read_text().strip()))
    _kill_tree(folder)  # the host "reboots": every process gone, no exit code written
    # nobody follows the batch (its client was killed): status settles it before showing anything,
    # so it never shows a batch running that is gone (a zombie is only ever shown for a batch a live
    # process follows)
    (entry,) = cli("status", "--host", "gpu1", "--json").json()
    assert entry["batches"] == [] and not any("zombie" in w for w in entry["warnings"]), entry
    (run,) = runs().values()
    assert run["status"] == "queued" and run["reason"] == "vanished", run
    result = cli("attach", "--json")
    assert result.exit_code == 0 and result.json() == {}, result
    assert launcher > 0


def _kill_tree(folder: Path) -> None:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if str(folder).encode() in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.3)


def test_timeout_and_cancel_with_the_docker_double(project, cli, videos, sshd, tmp_path):
    state = tmp_path / "docker-state"
    install_docker_double(sshd.bin, state)
    # the docker double runs the emulator, which takes its timing from the environment docker passes in
    slow = {"COSMOS_EMULATOR_SECONDS_PER_CHUNK": "6"}
    fake_transfer1_host(tmp_path, tmp_path)
    setup(project, sshd, tmp_path, timeouts={"batch_seconds": 2}, runtime="docker", docker_command="docker",
          cosmos_repo=str(tmp_path), checkpoint_dir=str(tmp_path), env=slow)
    pid = prompt(cli, "too slow in docker", videos["scene"])
    (run,) = cli("transfer", pid, "--weights", "vis=1", "--json").json()
    assert run["status"] == "failed" and run["reason"] == "timeout", run
    calls = docker_calls(state)
    run_call = next(c for c in calls if c[0] == "run")
    assert run_call[run_call.index("--name") + 1] == f"cosmos_transfer_{run['batch_id'][3:11]}"
    assert "--ipc=host" in run_call and f"{tmp_path}:/workspace" in run_call
    assert any(c[:2] == ["kill", run_call[run_call.index("--name") + 1]] for c in calls), "the container is killed"
    # cancel a running one: cancelled, not failed
    configure(project, default_executor="gpu1",
              executors={"gpu1": ssh_executor(sshd, tmp_path, runtime="docker", docker_command="docker",
                                              cosmos_repo=str(tmp_path), checkpoint_dir=str(tmp_path), env=slow)})
    proc = spawn(project, "transfer", pid, "--weights", "vis=1", "--json")
    batch = wait_for(running_batch)
    wait_for(lambda: sum(1 for c in docker_calls(state) if c[0] == "run") == 2)
    assert cli("cancel", batch["id"]).exit_code == 0
    out, _err = proc.communicate(timeout=240)
    (run,) = json.loads(out)
    assert run["status"] == "cancelled", run


def test_status_zombie_orphan_gpus_and_kill(project, cli, videos, sshd, tmp_path):
    state = tmp_path / "docker-state"
    install_docker_double(sshd.bin, state)
    smi = sshd.bin / "nvidia-smi"
    smi.write_text("#!/bin/sh\n# TEST DOUBLE of nvidia-smi\necho 'NVIDIA H100 80GB HBM3, 1234, 81559, 87, 64'\n")
    smi.chmod(0o755)
    setup(project, sshd, tmp_path, emulator={"seconds_per_chunk": 20})
    # an orphan: a cosmos_* container nobody in the ledger knows
    orphan = subprocess.Popen([str(sshd.bin / "docker"), "run", "--rm", "--name", "cosmos_transfer_0rphan00", "img",
                               "sleep", "120"])
    try:
        wait_for(lambda: (state / "containers" / "cosmos_transfer_0rphan00.json").exists())
        pid = prompt(cli, "status me", videos["scene"])
        proc = spawn(project, "transfer", pid, "--weights", "vis=1")
        batch = wait_for(running_batch)
        (entry,) = cli("status", "--host", "gpu1", "--json").json()
        assert entry["reachable"] and entry["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
        assert entry["gpus"][0]["memory_total_mb"] == 81559 and entry["disk_free_bytes"] > 0
        assert [b["id"] for b in entry["batches"]] == [batch["id"]]
        assert any("orphan: container cosmos_transfer_0rphan00" in w for w in entry["warnings"])
        assert not any("zombie" in w for w in entry["warnings"])
        human = cli("status")
        assert "H100" in human.stdout and "orphan" in human.stderr
        result = cli("kill", "--host", "gpu1", "--json")
        assert result.exit_code == 0, result
        proc.communicate(timeout=240)
        (run,) = runs().values()
        assert run["status"] == "cancelled"
        assert any(c[:2] == ["kill", "cosmos_transfer_0rphan00"] for c in docker_calls(state)), (docker_calls(state),
                                                                                               result.stdout)
    finally:
        orphan.kill()


def test_unreachable_host_is_one_line(project, cli, videos, tmp_path):
    from services.sshd import free_port

    configure(project, default_executor="gpu1", timeouts={"connect_seconds": 1},
              executors={"gpu1": {"type": "ssh", "host": "127.0.0.1", "port": free_port(),
                                  "known_hosts": str(tmp_path / "kh"), "remote_dir": str(tmp_path / "r")}})
    (entry,) = cli("status", "--host", "gpu1", "--json").json()
    assert entry["reachable"] is False and "cannot reach" in entry["error"]


def test_logs_follow_streams_the_remote_log(project, cli, videos, sshd, tmp_path):
    setup(project, sshd, tmp_path, emulator={"seconds_per_chunk": 2})
    pid = prompt(cli, "follow my log", videos["scene"])
    proc = spawn(project, "transfer", pid, "--weights", "vis=1")
    wait_for(running_batch)
    (run,) = runs().values()
    result = cli("logs", run["id"], "-f")
    assert result.exit_code == 0 and "model exited with code 0" in result.stdout and "chunk 1/1" in result.stdout
    proc.communicate(timeout=240)
