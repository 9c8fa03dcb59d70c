"""The Slurm executor against a real single-node Slurm (slurmctld + slurmd + munge) started by the fixture."""
from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import configure, slurm_executor, ssh_executor, wait_for
from conftest import cosmoskit_exe as exe
from conftest import ledger_batches as batches
from conftest import ledger_runs as runs
from conftest import make_prompt as prompt

pytestmark = pytest.mark.slurm


def transfer_until_running(project, slurm_cluster, pid):
    """Start `cosmoskit transfer` in its own process; return it and its batch once Slurm runs the job."""
    client = subprocess.Popen([exe(), "transfer", pid, "--weights", "vis=1", "--json"], cwd=project,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    batch = wait_for(lambda: next((b for b in batches() if b["state"] == "running"), None))
    wait_for(lambda: squeue(slurm_cluster, batch["handle"]["job_id"]) == "RUNNING")
    return client, batch


def setup(project, slurm_cluster, tmp_path, emulator=None, batching=None, **extra):
    configure(project, default_executor="cluster", emulator=emulator or {}, batching=batching or {},
              executors={"cluster": slurm_executor(slurm_cluster, tmp_path / "shared", **extra)})


def squeue(cluster, job_id):
    """The job's state as squeue shows it, "" once it has left the queue; None when squeue failed
    (a busy controller times out), so a wait never mistakes an error for an empty queue."""
    done = cluster.run("squeue", "-h", "-j", str(job_id), "-o", "%T", check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def test_submit_poll_logs_and_fetch(project, cli, videos, slurm_cluster, tmp_path):
    setup(project, slurm_cluster, tmp_path, extra_directives=["--comment=cosmoskit-test"])
    pid = prompt(cli, "on the cluster", videos["scene"])
    (run,) = cli("transfer", pid, "--weights", "vis=0.5,depth=0.5", "--json").json()
    assert run["status"] == "completed", run
    (batch,) = batches()
    job_id = batch["handle"]["job_id"]
    script = (project / "batches" / batch["id"] / "job.sbatch").read_text()
    for line in ("#SBATCH --gres=gpu:1", "#SBATCH --partition=debug", "#SBATCH --time=00:10:00",
                 f"#SBATCH --job-name=cosmos_transfer_{batch['id'][3:11]}", "#SBATCH --comment=cosmoskit-test"):
        assert line in script
    assert (project / "batches" / batch["id"] / f"slurm-{job_id}.out").exists(), "the job's output file comes back"
    assert (project / run["outputs"]["output.mp4"]).is_file()
    assert (tmp_path / "shared" / "store").is_dir(), "inputs staged once on the shared filesystem"
    result = cli("logs", run["id"])
    assert "running preprocessor" in result.stdout


def test_parallel_batches_pending_reasons_and_status(project, cli, videos, slurm_cluster, tmp_path):
    setup(project, slurm_cluster, tmp_path, emulator={"seconds_per_chunk": 3})
    pid = prompt(cli, "many at once", videos["scene"])
    ids = [cli("transfer", pid, "--weights", "vis=1", "--queue", "--json").json()[0]["id"] for _ in range(3)]
    w = subprocess.Popen([exe(), "worker", "--once", "--strategy", "single"], cwd=project,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # two GPUs on the node: two jobs run, the third waits for Resources
    wait_for(lambda: len([b for b in batches() if b["state"] == "running"]) == 3)
    # a fresh job is PENDING with reason None until the scheduler has looked at it
    (entry,) = wait_for(lambda: [e for e in cli("status", "--host", "cluster", "--json").json()
                                 if [(j["state"], j["reason"]) for j in e.get("jobs", []) if j["state"] == "PENDING"]
                                 == [("PENDING", "Resources")]] or None)
    assert entry["reachable"] and entry["partitions"][0]["gres"].startswith("gpu:2")
    states = sorted(j["state"] for j in entry["jobs"])
    assert states == ["PENDING", "RUNNING", "RUNNING"], states
    pending = next(j for j in entry["jobs"] if j["state"] == "PENDING")
    assert pending["reason"] == "Resources"
    human = cli("status", "--host", "cluster").stdout
    assert "PENDING (Resources)" in human
    _out, err = w.communicate(timeout=300)
    assert w.returncode == 0, err
    assert all(runs()[i]["status"] == "completed" for i in ids)


def test_cancel_and_scancel_outside(project, cli, videos, slurm_cluster, tmp_path):
    setup(project, slurm_cluster, tmp_path, emulator={"seconds_per_chunk": 20})
    pid = prompt(cli, "cancel me", videos["scene"])
    first, batch = transfer_until_running(project, slurm_cluster, pid)
    assert cli("cancel", batch["id"]).exit_code == 0
    out, _err = first.communicate(timeout=300)
    (run,) = json.loads(out)
    assert run["status"] == "cancelled", run
    # a job scancelled by someone else: its runs are cancelled, not left running
    second = subprocess.Popen([exe(), "transfer", pid, "--weights", "edge=1", "--json"], cwd=project,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    batch = wait_for(lambda: next((b for b in batches() if b["state"] == "running"), None))
    job_id = batch["handle"]["job_id"]
    wait_for(lambda: squeue(slurm_cluster, job_id) == "RUNNING")
    slurm_cluster.run("scancel", str(job_id))
    out, _err = second.communicate(timeout=300)
    (run,) = json.loads(out)
    assert run["status"] == "cancelled" and run["reason"] == "cancelled", run


def test_worker_restart_in_the_middle(project, cli, videos, slurm_cluster, tmp_path):
    setup(project, slurm_cluster, tmp_path, emulator={"seconds_per_chunk": 5})
    pid = prompt(cli, "restart", videos["scene"])
    rid = cli("transfer", pid, "--weights", "vis=1", "--queue", "--json").json()[0]["id"]
    w = subprocess.Popen([exe(), "worker"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    batch = wait_for(lambda: next((b for b in batches() if b["state"] == "running"), None))
    w.send_signal(signal.SIGTERM)
    w.communicate(timeout=120)
    assert squeue(slurm_cluster, batch["handle"]["job_id"]) in ("PENDING", "RUNNING"), "the job goes on in Slurm"
    w2 = subprocess.Popen([exe(), "worker", "--once"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    _out, err = w2.communicate(timeout=300)
    assert f"reattached to batch {batch['id']}" in err
    assert runs()[rid]["status"] == "completed" and len(batches()) == 1


def fail_the_node_under(client, slurm_cluster, cli, job_id):
    """Kill the client following the batch, set the node DOWN under the running job, wait until
    Slurm has ended it, then `cosmoskit attach`; the node is resumed whatever happens."""
    import socket

    client.send_signal(signal.SIGKILL)
    client.wait()
    node = socket.gethostname()
    try:
        slurm_cluster.run("scontrol", "update", f"nodename={node}", "state=down", "reason=cosmoskit-test")
        wait_for(lambda: squeue(slurm_cluster, job_id) == "")
        result = cli("attach", "--json")
        assert result.exit_code == 0, result
    finally:
        slurm_cluster.run("scontrol", "update", f"nodename={node}", "state=resume", check=False)


def test_node_failure_requeues_unfinished_runs(project, cli, videos, slurm_cluster, tmp_path):
    setup(project, slurm_cluster, tmp_path, emulator={"seconds_per_chunk": 20})
    pid = prompt(cli, "node fails", videos["scene"])
    client, batch = transfer_until_running(project, slurm_cluster, pid)
    fail_the_node_under(client, slurm_cluster, cli, batch["handle"]["job_id"])
    (run,) = runs().values()
    assert run["status"] == "queued" and run["reason"] == "vanished", run


def test_node_failure_keeps_the_lines_that_finished(project, cli, videos, slurm_cluster, tmp_path):
    """The batch folder outlives the node on the shared filesystem: a line written before the
    failure stays completed, the unfinished one is requeued."""
    # one batch of both lines, as a GPU-hour plan makes it (the makespan plan splits it across the slots)
    setup(project, slurm_cluster, tmp_path, emulator={"seconds_per_chunk": 4}, batching={"objective": "gpu_hours"})
    pid = prompt(cli, "half done", videos["scene"])
    ids = [cli("transfer", pid, "--weights", w, "--queue", "--json").json()[0]["id"] for w in ("vis=1", "vis=0.5")]
    client = subprocess.Popen([exe(), "worker", "--once", "--strategy", "strict"], cwd=project,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    batch = wait_for(lambda: next((b for b in batches() if b["state"] == "running"), None))
    wait_for(lambda: (Path(batch["handle"]["batch_dir"]) / "outputs" / "video_0" / "output.mp4").is_file())
    fail_the_node_under(client, slurm_cluster, cli, batch["handle"]["job_id"])
    final = runs()
    assert len(batch["runs"]) == 2 and sorted(ids) == sorted(batch["runs"]), batch
    first, second = batch["runs"]
    assert final[first]["status"] == "completed", final[first]
    assert (project / final[first]["outputs"]["output.mp4"]).is_file()
    assert final[second]["status"] == "queued" and final[second]["reason"] == "vanished", final[second]


@pytest.mark.sshd
def test_through_ssh_to_the_login_node(project, cli, videos, slurm_cluster, sshd, tmp_path):
    entry = slurm_executor(slurm_cluster, tmp_path / "shared")
    ssh = ssh_executor(sshd, tmp_path)
    entry.update({k: ssh[k] for k in ("host", "port", "user", "key_file", "known_hosts")})
    configure(project, default_executor="cluster", executors={"cluster": entry})
    pid = prompt(cli, "via the login node", videos["scene"])
    (run,) = cli("transfer", pid, "--weights", "edge=1", "--json").json()
    assert run["status"] == "completed", run
    (batch,) = batches()
    assert batch["handle"]["host"] == "127.0.0.1" and batch["handle"]["job_id"]
