"""How the Slurm executor reads a job's end, against Slurm CLI test doubles.

The states a real Slurm passes through for a failed node are fleeting (a job killed on a node
that went down shows COMPLETING until its processes are gone, and NODE_FAIL only after), so a
real cluster hits them only by chance; these doubles (`squeue`, `sacct`, `scontrol` scripts that
print what the test says) hold each state still. tests/test_slurm.py covers the real cluster.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cosmoskit._core.errors import CosmoskitError
from cosmoskit_slurm.executor import SlurmExecutor


def slurm_double(bin_dir: Path, squeue: tuple[str, str] | None = None, scontrol: str = "",
                 error: str | None = None) -> None:
    """Write squeue/sacct/scontrol doubles. squeue lists the job with `squeue` = (state, reason) through
    its -o format (%T, %r) or, with None, lists nothing, as for a job that left the queue; scontrol
    prints `scontrol`; sacct prints nothing, as on a cluster without accounting. With `error`, squeue
    and scontrol print it on stderr and exit 1, as the real ones do when the controller fails them."""
    bin_dir.mkdir(exist_ok=True)
    state, reason = squeue or ("", "")
    scripts = {
        "squeue": ('fmt=""; while [ $# -gt 0 ]; do [ "$1" = -o ] && fmt="$2"; shift; done\n'
                   + (f'printf "%s\\n" "$fmt" | sed "s/%T/{state}/; s/%r/{reason}/"\n' if squeue else "")),
        "sacct": "",
        "scontrol": f"printf '%s' '{scontrol}'\n",
    }
    if error is not None:
        scripts["squeue"] = scripts["scontrol"] = f"echo '{error}' >&2; exit 1\n"
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def executor(tmp_path):
    bin_dir = tmp_path / "bin"
    config = {name: field.default for name, field in SlurmExecutor.options.items()}
    config.update(host=None, remote_dir=str(tmp_path / "remote"),
                  slurm_env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    return SlurmExecutor("cluster", config, settings=None), bin_dir


def batch_dir(tmp_path: Path, exit_code: str | None, stop_reason: str | None) -> dict:
    folder = tmp_path / "remote" / "batches" / "bt_1"
    folder.mkdir(parents=True)
    if exit_code is not None:
        (folder / "exit_code").write_text(exit_code + "\n")
    if stop_reason is not None:
        (folder / "stop_reason").write_text(stop_reason + "\n")
    return {"batch_dir": str(folder), "job_id": "42"}


def test_signalled_launcher_waits_while_the_job_is_completing(executor, tmp_path):
    ex, bin_dir = executor
    handle = batch_dir(tmp_path, "143", "cancelled")
    slurm_double(bin_dir, squeue=("COMPLETING", "NodeDown"))
    result = ex.poll(handle)
    assert result.state == "running" and "COMPLETING" in result.detail
    slurm_double(bin_dir, scontrol="JobId=42 JobState=NODE_FAIL Reason=NodeDown ExitCode=0:15\n")
    result = ex.poll(handle)
    assert result.state == "vanished" and "NODE_FAIL" in result.detail


def test_cancelled_job_is_an_exit_once_slurm_settles(executor, tmp_path):
    ex, bin_dir = executor
    handle = batch_dir(tmp_path, "143", "cancelled")
    slurm_double(bin_dir, scontrol="JobId=42 JobState=CANCELLED Reason=None ExitCode=0:15\n")
    result = ex.poll(handle)
    assert result.state == "exited" and result.exit_code == 143


def test_plain_exit_does_not_wait_for_slurm(executor, tmp_path):
    ex, bin_dir = executor
    handle = batch_dir(tmp_path, "0", None)
    slurm_double(bin_dir, squeue=("COMPLETING", "None"))
    result = ex.poll(handle)
    assert result.state == "exited" and result.exit_code == 0


def test_job_gone_without_exit_code_vanishes(executor, tmp_path):
    ex, bin_dir = executor
    handle = batch_dir(tmp_path, None, None)
    slurm_double(bin_dir, scontrol="JobId=42 JobState=PREEMPTED Reason=None ExitCode=0:0\n")
    result = ex.poll(handle)
    assert result.state == "vanished" and "PREEMPTED" in result.detail


def test_a_controller_that_does_not_answer_is_not_a_forgotten_job(executor, tmp_path):
    ex, bin_dir = executor
    slurm_double(bin_dir, error="slurm_load_jobs error: Socket timed out on send/recv operation")
    with pytest.raises(CosmoskitError, match=r"Slurm did not answer about job 42: .*Socket timed out"):
        ex.poll(batch_dir(tmp_path, None, None))


def test_a_job_slurm_has_purged_vanishes(executor, tmp_path):
    ex, bin_dir = executor
    slurm_double(bin_dir, error="slurm_load_jobs error: Invalid job id specified")
    result = ex.poll(batch_dir(tmp_path, None, None))
    assert result.state == "vanished" and "forgotten" in result.detail


def test_exit_code_written_as_the_node_fails_is_still_a_node_failure(executor, tmp_path):
    """The launcher, signalled by the failing node, may write its exit code between our two looks."""
    ex, bin_dir = executor
    handle = batch_dir(tmp_path, None, None)
    slurm_double(bin_dir)
    folder = handle["batch_dir"]
    (bin_dir / "scontrol").write_text(
        f"#!/bin/sh\necho cancelled > {folder}/stop_reason; echo 143 > {folder}/exit_code\n"
        "echo 'JobId=42 JobState=NODE_FAIL Reason=NodeDown ExitCode=0:15'\n")
    result = ex.poll(handle)
    assert result.state == "vanished" and "NODE_FAIL" in result.detail
