"""Transfer, upscale and enhance end to end: local executor, launcher, CPU emulator, real ffmpeg."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import configure, ledger_batches, ledger_runs
from conftest import make_prompt as prompt
from conftest import running_batch as _running_batch
from conftest import wait_for as _wait_for


def probe(path):
    from cosmoskit._core.media import probe as _probe

    return _probe(Path(path))


def test_single_run(project, cli, videos):
    pid = prompt(cli, "a forklift in a warehouse", videos["scene"])
    result = cli("transfer", pid, "--weights", "vis=0.5,depth=0.5", "--json")
    assert result.exit_code == 0, result
    (run,) = result.json()
    assert run["status"] == "completed", run
    folder = project / "outputs" / f"run_{run['id']}"
    for name in ("output.mp4", "spec.json", "command.json", "run.json", "logs/run.log", "logs/batch.log",
                 "vis_input_control.mp4"):
        assert (folder / name).is_file(), name
    assert not (folder / "depth_input_control.mp4").exists(), "the prompt's own depth video is used, not generated"
    info = probe(folder / "output.mp4")
    assert (info.width, info.height, info.frames, round(info.fps)) == (1280, 704, 8, 24)
    assert run["outputs"]["output.mp4"] == f"outputs/run_{run['id']}/output.mp4"
    assert json.loads((folder / "run.json").read_text())["status"] == "completed"
    assert "cosmos-emulator" in (folder / "logs" / "run.log").read_text()


def test_batch_of_five_maps_each_line_to_its_run(project, cli, videos):
    from cosmoskit._core import context
    from cosmoskit._core.engine import Engine
    from cosmoskit._core.foreground import run_now

    # the mixed strategy puts the five control sets in one load (the subject here is the line-to-run mapping;
    # whether one load is cheaper is the configured strategy's call, tested in test_sweep and test_batching)
    configure(project, batching={"strategy": "mixed"})
    pids = [prompt(cli, f"variation number {i}", videos["scene"]) for i in range(5)]
    engine = Engine(context.settings(), context.ledger())
    weights = ["vis=1", "edge=0.5,depth=0.5", "seg=0.3,vis=0.7", "depth=1", "vis=0.2,edge=0.2,depth=0.3,seg=0.3"]
    docs = []
    for pid, w in zip(pids, weights, strict=True):
        docs += engine.new_runs("transfer", [pid], {"weights": w})
    runs = run_now(engine, docs, quiet=True)
    engine.close()
    assert [r["status"] for r in runs] == ["completed"] * 5
    assert len({r["batch_id"] for r in runs}) == 1, "five runs, one model load"
    for i, run in enumerate(runs):
        folder = project / "outputs" / f"run_{run['id']}"
        assert (folder / "prompt.txt").read_text().startswith(f"variation number {i}")
        assert (folder / "batch.jsonl").is_file()
        own = (folder / "logs" / "run.log").read_text()
        assert f"line {i}/5" in own and f"line {(i + 1) % 5}/5 chunk" not in own


def test_upscale_of_a_completed_run(project, cli, videos):
    pid = prompt(cli, "scene to upscale", videos["scene"])
    (source,) = cli("transfer", pid, "--weights", "edge=1", "--json").json()
    result = cli("upscale", "--from-run", source["id"][:8], "--weight", "0.4", "--json")
    assert result.exit_code == 0, result
    (run,) = result.json()
    assert run["status"] == "completed" and run["parent_run"] == source["id"]
    assert run["params"]["source_run"] == source["id"] and run["params"]["control_weight"] == 0.4
    info = probe(project / run["outputs"]["upscaled.mp4"])
    assert (info.width, info.height) == (3840, 2112)


def test_upscale_needs_a_completed_transfer(project, cli, videos):
    assert "exactly one" in cli("upscale").stderr
    pid = prompt(cli, "x", videos["lone"])
    queued = cli("transfer", pid, "--queue", "--json").json()[0]
    result = cli("upscale", "--from-run", queued["id"])
    assert result.exit_code == 1 and "completed transfer" in result.stderr


def test_enhance_makes_a_linked_prompt_or_overwrites(project, cli, videos):
    pid = prompt(cli, "a quiet street", videos["lone"])
    (run,) = cli("enhance", pid, "--json").json()
    assert run["status"] == "completed", run
    assert (project / run["outputs"]["enhanced_prompt.txt"]).read_text().startswith("a quiet street")
    child = cli("prompt", "show", run["result_prompt"], "--json").json()
    assert child["parent_prompt"] == pid and child["text"] != "a quiet street"
    assert "\n" not in child["text"] and "cosmoskit-launcher" not in child["text"], "only the upsampled text"
    assert child["inputs"] == cli("prompt", "show", pid, "--json").json()["inputs"]
    (run2,) = cli("enhance", pid, "--overwrite", "--json").json()
    parent = cli("prompt", "show", pid, "--json").json()
    assert run2["result_prompt"] == pid
    assert parent["text"] != "a quiet street" and parent["history"][0]["text"] == "a quiet street"


def test_guardrail_block_fails_only_that_run(project, cli, videos):
    from cosmoskit._core import context
    from cosmoskit._core.engine import Engine
    from cosmoskit._core.foreground import run_now

    pids = [prompt(cli, t, videos["scene"]) for t in ("fine one", "bad EMULATOR_GUARDRAIL_BLOCK", "fine two")]
    engine = Engine(context.settings(), context.ledger())
    docs = [d for p in pids for d in engine.new_runs("transfer", [p], {"weights": "vis=1"})]
    runs = run_now(engine, docs, quiet=True)
    engine.close()
    assert [r["status"] for r in runs] == ["completed", "failed", "completed"]
    assert runs[1]["reason"] == "guardrail" and "guardrail" in runs[1]["error"].lower()
    assert runs[1]["attempts"] == 1, "a guardrail block is not retried"
    assert runs[2]["attempts"] == 2, "the line after the crash is relaunched as a smaller batch"
    assert len(ledger_batches()) == 2


def test_out_of_memory_retries_each_run_alone(project, cli, videos):
    configure(project, emulator={"oom_above_controls": 2})
    pids = [prompt(cli, f"p{i}", videos["scene"]) for i in range(2)]
    from cosmoskit._core import context
    from cosmoskit._core.engine import Engine
    from cosmoskit._core.foreground import run_now

    engine = Engine(context.settings(), context.ledger())
    # together they need vis+edge+depth (3 networks, too many); alone each needs 2 or 1
    docs = engine.new_runs("transfer", [pids[0]], {"weights": "vis=0.5,edge=0.5"})
    docs += engine.new_runs("transfer", [pids[1]], {"weights": "depth=1"})
    docs += engine.new_runs("transfer", [pids[1]], {"weights": "vis=0.3,edge=0.3,depth=0.4"})
    runs = run_now(engine, docs, quiet=True)
    engine.close()
    assert [r["status"] for r in runs] == ["completed", "completed", "failed"]
    assert runs[2]["reason"] == "oom" and "out of memory" in runs[2]["error"].lower()
    assert len(ledger_batches()) == 4  # the shared batch, then one per run


def test_launch_returns_once_the_launcher_is_identified(project, cli, videos):
    """The handle's pid is the launcher's own, on record in launcher.pid, when launch returns."""
    configure(project, emulator={"seconds_per_chunk": 2})
    pid = prompt(cli, "identified", videos["scene"])
    from cosmoskit._core import context
    from cosmoskit._core.engine import Engine

    engine = Engine(context.settings(), context.ledger())
    batch = engine.launch(docs=engine.new_runs("transfer", [pid], {"weights": "vis=1"}))
    folder = Path(batch["handle"]["batch_dir"])
    assert (folder / "launcher.pid").read_text().strip() == str(batch["handle"]["pid"])
    assert engine.executor(batch["executor"]).poll(batch["handle"]).state == "running"
    engine.cancel(batch["id"])
    engine.follow(batch["id"])
    engine.close()
    assert ledger_runs()[batch["runs"][0]]["status"] == "cancelled"


def test_a_vanish_is_believed_only_when_a_second_look_agrees(project, cli, videos, monkeypatch):
    """One poll that sees no launcher (a loaded host, a lagging filesystem) does not requeue a batch."""
    configure(project, emulator={"seconds_per_chunk": 0.5})
    pid = prompt(cli, "second look", videos["scene"])
    from cosmoskit._core import context
    from cosmoskit._core.engine import Engine
    from cosmoskit._core.executor import PollResult
    from cosmoskit_local.executor import LocalExecutor

    real_poll, fooled = LocalExecutor.poll, []

    def poll_once_wrong(self, handle):
        if not fooled:
            fooled.append(True)
            return PollResult("vanished", detail="a false alarm")
        return real_poll(self, handle)

    monkeypatch.setattr(LocalExecutor, "poll", poll_once_wrong)
    engine = Engine(context.settings(), context.ledger())
    batch = engine.launch(docs=engine.new_runs("transfer", [pid], {"weights": "vis=1"}))
    engine.follow(batch["id"])
    engine.close()
    (run,) = ledger_runs().values()
    assert fooled and run["status"] == "completed" and run["attempts"] == 1, run


def test_bad_input_is_one_line_and_writes_nothing(project, cli, videos, tmp_path):
    pid = prompt(cli, "ok", videos["lone"])
    before = ledger_runs()
    cases = [
        (("transfer", "ps_nothere"), "no prompt matches"),
        (("transfer", pid, "--weights", "vis=1.7"), "outside 0..1"),
        (("transfer", pid, "--weights", "vis=abc"), "not a number"),
        (("transfer", pid, "--weights", "color=0.5"), "valid controls: vis, edge, depth, seg, keypoint"),
        (("transfer", pid, "--weights", "vis=0"), "at least one control weight"),
        (("prompt", "create", "x", str(tmp_path / "missing")), "no such file"),
        (("prompt", "create", "x", str(videos["broken"])), "not a readable video"),
        (("prompt", "create", "x", str(videos["mismatched"])), "frames 6"),
    ]
    for args, needle in cases:
        result = cli(*args)
        assert result.exit_code == 1, (args, result)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0], (args, result)
    assert ledger_runs() == before
    # a prompt whose video was deleted since it was made
    gone = tmp_path / "gone.mp4"
    gone.write_bytes(videos["lone"].read_bytes())
    pid2 = prompt(cli, "soon gone", gone)
    gone.unlink()
    result = cli("transfer", pid2)
    assert result.exit_code == 1 and "is missing" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert ledger_runs() == before
    assert ledger_batches() == []


SLOW = {"seconds_per_chunk": 3}


def _start_transfer(project, pid, *extra):
    exe = Path(sys.executable).with_name("cosmoskit")
    return subprocess.Popen([str(exe), "transfer", pid, "--weights", "vis=1", *extra], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_client_killed_mid_batch_then_reattached(project, cli, videos):
    configure(project, emulator=SLOW)
    pid = prompt(cli, "survives its client", videos["scene"])
    client = _start_transfer(project, pid)
    batch = _wait_for(_running_batch)
    time.sleep(0.5)
    client.send_signal(signal.SIGKILL)
    client.wait()
    (run,) = ledger_runs().values()
    assert run["status"] == "running"
    result = cli("attach", "--json")
    assert result.exit_code == 0, result
    assert result.json()[batch["id"]] == "finished"
    (run,) = ledger_runs().values()
    assert run["status"] == "completed" and run["attempts"] == 1
    assert len(ledger_batches()) == 1, "reattached, never relaunched"
    assert (project / run["outputs"]["output.mp4"]).is_file()


def test_cancel_a_running_batch_from_another_process(project, cli, videos):
    configure(project, emulator=SLOW)
    pid = prompt(cli, "to be cancelled", videos["scene"])
    client = _start_transfer(project, pid, "--json")
    _wait_for(_running_batch)
    (run,) = ledger_runs().values()
    result = cli("cancel", run["id"][:9])
    assert result.exit_code == 0, result
    _out, err = client.communicate(timeout=240)
    assert client.returncode == 3, err  # its run was cancelled: the command says so and does not exit 0
    (run,) = ledger_runs().values()
    assert run["status"] == "cancelled" and run["reason"] == "cancelled"
    (batch,) = ledger_batches()
    assert batch["state"] == "cancelled"
    folder = str(project / "batches" / batch["id"])

    def nothing_left():
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and folder.encode() in (proc / "cmdline").read_bytes():
                    return False
            except OSError:
                pass
        return True

    _wait_for(nothing_left, timeout=15)  # launcher, emulator and helpers are all gone


def test_timeout_kills_the_batch_and_fails_its_runs(project, cli, videos):
    configure(project, emulator=SLOW, timeouts={"batch_seconds": 1})
    pid = prompt(cli, "too slow", videos["scene"])
    result = cli("transfer", pid, "--weights", "vis=1", "--json")
    assert result.exit_code == 3, "a run that did not complete is not success"
    (run,) = result.json()
    assert run["status"] == "failed" and run["reason"] == "timeout" and "timed out" in run["error"]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: 1 of 1 run(s) did not complete") and run["id"] in line


def test_logs_of_a_finished_run(project, cli, videos):
    pid = prompt(cli, "log me", videos["lone"])
    (run,) = cli("transfer", pid, "--weights", "edge=1", "--json").json()
    result = cli("logs", run["id"])
    assert result.exit_code == 0 and "running preprocessor" in result.stdout
    assert cli("logs", run["id"], "--batch").stdout.count("cosmoskit-launcher") >= 2
