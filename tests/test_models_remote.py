"""Transfer 2.5 and Cosmos 3 end to end through the CPU emulator on the SSH executor (a real OpenSSH server on
127.0.0.1) and the Slurm executor (a real single-node Slurm): a batch with a guardrail block, a process that dies
mid-batch and the relaunch of what it never ran, and a client killed mid-batch then reattached.  The local
executor's cases are in tests/test_transfer25.py and tests/test_cosmos3.py."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    configure,
    ledger_batches,
    ledger_runs,
    running_batch,
    slurm_executor,
    spawn,
    ssh_executor,
    wait_for,
)
from conftest import make_prompt as prompt

PLACES = [pytest.param("ssh", marks=pytest.mark.sshd), pytest.param("slurm", marks=pytest.mark.slurm)]


@pytest.fixture
def place(request, tmp_path):
    """A configured executor of the kind asked for: ``(name, its executors: entry)``."""
    if request.param == "ssh":
        server = request.getfixturevalue("sshd")
        return "gpu1", ssh_executor(server, tmp_path)
    cluster = request.getfixturevalue("slurm_cluster")
    return "cluster", slurm_executor(cluster, tmp_path / "shared")


def use(project: Path, place: tuple[str, dict[str, Any]], **sections: Any) -> None:
    name, entry = place
    configure(project, default_executor=name, executors={name: entry}, **sections)


def shots(tmp_path: Path, count: int) -> list[Path]:
    """Shots with videos of their own (a staged input belongs to one sample)."""
    from cosmoskit._core.media import make_test_video

    folders = []
    for i, source in zip(range(count), ("testsrc", "testsrc2", "rgbtestsrc", "smptebars", "pal75bars"),
                         strict=False):
        folder = tmp_path / f"shot{i}"
        make_test_video(folder / "color.mp4", source=source, width=64, height=36, frames=8, fps=24)
        make_test_video(folder / "depth.mp4", source="color=c=gray", width=64, height=36, frames=8, fps=24)
        make_test_video(folder / "seg.mp4", source="color=c=navy", width=64, height=36, frames=8, fps=24)
        folders.append(folder)
    return folders


@pytest.mark.parametrize("place", PLACES, indirect=True)
def test_transfer25_guardrail_block_mid_batch_abort_and_relaunch(project, cli, tmp_path, place):
    """Four samples: the second is blocked by the guardrail (exit stays 0, it is final), the third's input turns
    unreadable while the first runs (the process exits 1 there), the fourth never runs; the third and fourth are
    relaunched once, in a batch of their own, and complete."""
    use(project, place, emulator={"seconds_per_chunk": 4})
    texts = ["fine one", "bad EMULATOR_GUARDRAIL_BLOCK", "fine three", "fine four"]
    pids = [prompt(cli, t, f) for t, f in zip(texts, shots(tmp_path, 4), strict=True)]
    client = spawn(project, "transfer", *pids, "--model", "transfer2.5", "--weights", "edge=1", "--json")
    batch = wait_for(running_batch)
    folder = Path(batch["handle"]["batch_dir"])
    wait_for(lambda: (folder / "batch.log").exists() and "chunk 1/1" in (folder / "batch.log").read_text())
    third = folder / json.loads((folder / "batch.jsonl").read_text().splitlines()[2])["video_path"]
    third.unlink()  # a hard link into the place's store: replaced, never written through
    third.write_bytes(b"not a video any more")
    _out, err = client.communicate(timeout=600)
    runs = [ledger_runs()[r] for r in batch["runs"]]
    assert [r["status"] for r in runs] == ["completed", "failed", "completed", "completed"], (runs, err)
    assert runs[1]["reason"] == "guardrail" and "GUARDRAIL BLOCKED" in runs[1]["error"]
    assert [r["attempts"] for r in runs] == [1, 1, 2, 2]
    batches = ledger_batches()
    assert len(batches) == 2 and batches[1]["runs"] == batch["runs"][2:] and batches[0]["exit_code"] == 1
    assert client.returncode == 3, "a run did not complete (the blocked one)"
    for run in (runs[0], runs[2], runs[3]):
        assert (project / run["outputs"]["output.mp4"]).is_file()
        assert (project / "outputs" / f"run_{run['id']}" / f"{run['id']}_control_edge.mp4").is_file()


@pytest.mark.parametrize("place", PLACES, indirect=True)
def test_cosmos3_mid_batch_abort_and_relaunch(project, cli, tmp_path, place):
    """Out of memory at the second sample: the third never runs; the prompt with the block word is generated
    anyway (no guardrail on transfer); the two without output are relaunched once, each alone."""
    # one batch of the three, as one GPU-hour plan makes it (the makespan plan would split it across slots)
    use(project, place, emulator={"oom_above_controls": 1}, batching={"objective": "gpu_hours"})
    a, b, c = shots(tmp_path, 3)
    pids = [prompt(cli, "bad EMULATOR_GUARDRAIL_BLOCK", a), prompt(cli, "two hints", b), prompt(cli, "blur", c)]
    docs = []
    for pid, weights in zip(pids, ("edge=1", "depth=1,seg=1", "blur=1"), strict=True):
        docs.append(cli("transfer", pid, "--model", "cosmos3-nano", "-w", weights, "--queue", "--json").json()[0])
    result = cli("worker", "--once")
    assert result.exit_code == 3, result  # a run did not complete
    runs = [ledger_runs()[d["id"]] for d in docs]
    assert [r["status"] for r in runs] == ["completed", "failed", "completed"], (runs, result)
    # worker.max_attempts is 3: the run that does not fit tries alone twice more; the one never reached, once
    assert runs[1]["reason"] == "oom" and [r["attempts"] for r in runs] == [1, 3, 2], runs
    first = ledger_batches()[0]
    assert first["exit_code"] == 1 and first["runs"] == [d["id"] for d in docs]
    done = project / runs[0]["outputs"]["output.mp4"]
    assert done.is_file() and (done.parent / "sample_outputs.json").is_file()


@pytest.mark.parametrize("model", ["transfer2.5", "cosmos3-nano"])
@pytest.mark.parametrize("place", PLACES, indirect=True)
def test_client_killed_mid_batch_then_reattached(project, cli, tmp_path, place, model):
    use(project, place, emulator={"seconds_per_chunk": 4})
    (shot,) = shots(tmp_path, 1)
    pid = prompt(cli, "survives its client", shot)
    client = spawn(project, "transfer", pid, "--model", model, "--weights", "edge=1", "--seed", "1,2")
    batch = wait_for(running_batch)
    wait_for(lambda: "chunk 1/1" in (Path(batch["handle"]["batch_dir"]) / "batch.log").read_text()
             if (Path(batch["handle"]["batch_dir"]) / "batch.log").exists() else False)
    os.kill(client.pid, signal.SIGKILL)
    client.wait()
    assert {r["status"] for r in ledger_runs().values()} == {"running"}
    result = cli("attach", "--json")
    assert result.exit_code == 0, result
    assert result.json()[batch["id"]] == "finished"
    runs = ledger_runs()
    assert {r["status"] for r in runs.values()} == {"completed"} and {r["attempts"] for r in runs.values()} == {1}
    assert len(ledger_batches()) == 1, "reattached, never relaunched"
    for run in runs.values():
        assert (project / run["outputs"]["output.mp4"]).is_file()
