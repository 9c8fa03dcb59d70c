"""The queue and the worker end to end on the emulator: several workers, SIGTERM, OOM, guardrail, pause, cancel."""
from __future__ import annotations

import signal
import time
from pathlib import Path

from conftest import configure, spawn, wait_for
from conftest import ledger_batches as batches
from conftest import ledger_runs as runs
from conftest import make_prompt as prompt


def queue(cli, pid, weights, *extra):
    result = cli("transfer", pid, "--weights", weights, "--queue", "--json", *extra)
    assert result.exit_code == 0, result
    return result.json()[0]["id"]


def worker(project, *args):
    return spawn(project, "worker", *args)


TWO_PLACES = {"gpu-a": {"type": "local", "gpus": "0"}, "gpu-b": {"type": "local", "gpus": "1"}}


def test_two_workers_never_run_a_run_twice(project, cli, videos):
    # one queue, a place each: both take part, and they race for every claim
    configure(project, emulator={"seconds_per_chunk": 0.3}, default_executor="gpu-a", executors=TWO_PLACES)
    pid = prompt(cli, "shared queue", videos["scene"])
    ids = [queue(cli, pid, "vis=1") for _ in range(8)]
    procs = [worker(project, "--once", "--strategy", "single", "--host", place) for place in TWO_PLACES]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    final = runs()
    odd = {i: (final[i]["status"], final[i]["attempts"], final[i].get("reason"), final[i].get("error")) for i in ids
           if final[i]["status"] != "completed" or final[i]["attempts"] != 1}
    assert not odd, odd
    launched = [r for b in batches() for r in b["runs"]]
    assert sorted(launched) == sorted(ids), "each run in exactly one batch"
    owners = {b["owner"]["pid"] for b in batches()}
    assert len(owners) == 2, "both workers took part"


def test_a_live_worker_adopts_the_batch_of_a_worker_killed_mid_batch(project, cli, videos):
    """SIGKILL one of two workers while its batch runs: its runs must not stay `running` until someone runs
    `attach`. The killed worker is left unreaped (a zombie), which must count as dead."""
    # two places on this machine, one GPU each: A serves only the first, B both (so B runs a batch of its own)
    configure(project, emulator={"seconds_per_chunk": 1}, default_executor="gpu-a", executors=TWO_PLACES)
    pid = prompt(cli, "orphaned batch", videos["scene"])
    ids = [queue(cli, pid, "vis=1") for _ in range(8)]
    a = worker(project, "--strategy", "single", "--host", "gpu-a")
    mine = wait_for(lambda: next((b for b in batches() if b["state"] == "running" and b["owner"]["pid"] == a.pid),
                                 None), timeout=120)
    b = worker(project, "--strategy", "single")
    # B is past its start-up reattach once it runs a batch of its own: A dies under a live B
    wait_for(lambda: any(bt["owner"]["pid"] == b.pid for bt in batches()), timeout=120)
    a.send_signal(signal.SIGKILL)  # and not reaped: a zombie until the test ends
    try:
        wait_for(lambda: all(runs()[i]["status"] == "completed" for i in ids), timeout=240)
    finally:
        b.send_signal(signal.SIGTERM)
        _out, err = b.communicate(timeout=240)
        a.wait()
    assert f"batch {mine['id']}" in err and "its process died" in err, err
    final = runs()
    assert all(final[i]["attempts"] == 1 for i in mine["runs"]), "its lines finished on the host and were kept"
    ran = [bt for bt in batches() if bt.get("started")]  # a batch A staged and never started gave its runs back
    assert sorted(r for bt in ran for r in bt["runs"]) == sorted(ids), "each run in exactly one batch that ran"
    assert all(final[i]["attempts"] == 1 for i in ids), "a staged batch's runs lost no attempt"


def test_priority_then_first_in_first_out(project, cli, videos):
    pid = prompt(cli, "priorities", videos["lone"])
    low = queue(cli, pid, "edge=1")
    high = queue(cli, pid, "edge=1", "--priority", "5")
    low2 = queue(cli, pid, "edge=1")
    mid = queue(cli, pid, "edge=1", "--priority", "2")
    listed = [r["id"] for r in cli("queue", "list", "--strategy", "single", "--json").json()["queue"]]
    assert listed == [high, mid, low, low2]
    p = worker(project, "--once", "--strategy", "single")
    p.communicate(timeout=120)
    order = [b["runs"][0] for b in batches()]
    assert order == [high, mid, low, low2]


def test_sigterm_leaves_the_batch_running_and_the_next_worker_reattaches(project, cli, videos):
    configure(project, emulator={"seconds_per_chunk": 4})
    pid = prompt(cli, "sigterm", videos["scene"])
    rid = queue(cli, pid, "vis=1")
    p = worker(project)
    batch = wait_for(lambda: next((b for b in batches() if b["state"] == "running"), None))
    p.send_signal(signal.SIGTERM)
    _out, err = p.communicate(timeout=240)
    assert p.returncode == 0, err
    assert "running batches continue" in err
    assert runs()[rid]["status"] == "running"
    launcher = int((project / "batches" / batch["id"] / "launcher.pid").read_text())
    assert Path(f"/proc/{launcher}").exists(), "the batch goes on without its worker"
    p2 = worker(project, "--once")
    _out, err = p2.communicate(timeout=240)
    assert p2.returncode == 0, err
    assert f"reattached to batch {batch['id']}" in err
    assert runs()[rid]["status"] == "completed" and len(batches()) == 1


def test_out_of_memory_is_replanned_with_fewer_controls(project, cli, videos):
    configure(project, emulator={"oom_above_controls": 2}, worker={"max_attempts": 3})
    pid = prompt(cli, "oom", videos["scene"])
    a = queue(cli, pid, "vis=0.5,edge=0.5")
    b = queue(cli, pid, "depth=1")
    hopeless = queue(cli, pid, "vis=0.3,edge=0.3,depth=0.4")
    p = worker(project, "--once", "--strategy", "mixed")
    p.communicate(timeout=120)
    final = runs()
    assert final[a]["status"] == "completed" and final[b]["status"] == "completed"
    assert final[hopeless]["status"] == "failed" and final[hopeless]["reason"] == "oom"
    assert final[hopeless]["attempts"] == 3
    first = batches()[0]
    assert set(first["runs"]) >= {a, b}, "mixed put them in one load, which ran out of memory"
    assert first["state"] == "failed"
    assert all(set(bt["runs"]) != {a, b} for bt in batches()[1:]), "re-planned with fewer control networks per load"


def test_guardrail_block_fails_one_and_relaunches_the_rest(project, cli, videos):
    ids = []
    for text in ("fine a", "blocked EMULATOR_GUARDRAIL_BLOCK", "fine b"):
        ids.append(queue(cli, prompt(cli, text, videos["scene"]), "vis=1"))
    p = worker(project, "--once")
    p.communicate(timeout=120)
    final = runs()
    assert [final[i]["status"] for i in ids] == ["completed", "failed", "completed"]
    assert final[ids[1]]["reason"] == "guardrail"
    assert batches()[0]["runs"] == ids and batches()[1]["runs"] == [ids[2]]


def test_pause_resume_and_new_runs_without_restart(project, cli, videos):
    pid = prompt(cli, "pause", videos["lone"])
    assert cli("queue", "pause").exit_code == 0
    p = worker(project)
    try:
        rid = queue(cli, pid, "edge=1")
        time.sleep(2.0)
        assert runs()[rid]["status"] == "queued" and batches() == []
        assert cli("queue", "list", "--json").json()["paused"] is True
        assert cli("queue", "resume").exit_code == 0
        wait_for(lambda: runs()[rid]["status"] == "completed")
        later = queue(cli, pid, "vis=1")
        wait_for(lambda: runs()[later]["status"] == "completed")
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=240)


def test_cancel_queued_and_running(project, cli, videos):
    configure(project, emulator={"seconds_per_chunk": 4})
    pid = prompt(cli, "cancel", videos["scene"])
    first = queue(cli, pid, "vis=1")
    second = queue(cli, pid, "vis=1")
    p = worker(project, "--strategy", "single")
    try:
        wait_for(lambda: runs()[first]["status"] == "running")
        result = cli("queue", "cancel", second, "--json")
        assert result.exit_code == 0 and result.json()[0]["stopping"] is False
        assert runs()[second]["status"] == "cancelled"
        assert cli("cancel", first).exit_code == 0
        wait_for(lambda: runs()[first]["status"] == "cancelled")
        time.sleep(1.0)
        # it may have been staged behind the first already: cancelled there too, at once, never started
        assert all(second not in b["runs"] for b in batches() if b.get("started")), "a cancelled run never starts"
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=240)
    retry = cli("queue", "retry", first, "--json").json()[0]
    assert retry["status"] == "queued" and retry["attempts"] == 0


def test_queue_plan_reports_the_speedup(project, cli, videos):
    pid = prompt(cli, "plan", videos["lone"])
    for w in ("vis=1", "vis=1", "vis=1", "edge=1"):
        queue(cli, pid, w)
    single = cli("queue", "plan", "--strategy", "single", "--json").json()
    best = cli("queue", "plan", "--json").json()
    assert len(single["batches"]) == 4
    assert len(best["batches"]) == 2 and best["speedup"] > 1.0
    assert best["gpu_seconds"] < single["gpu_seconds"]
    assert round(best["one_at_a_time_seconds"]) == round(single["gpu_seconds"])
