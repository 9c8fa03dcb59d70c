"""What every command promises a script: one line on stderr for any problem, and documented exit codes
(0 done, 1 error, 2 usage, 3 runs that did not complete, 130 interrupted)."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from conftest import configure, ledger_batches, ledger_runs, make_prompt, run_cli, spawn, wait_for


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "╭" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("args, needle", [
    (["transfer", "--wieghts", "x"], "No such option: --wieghts"),
    (["nosuch"], "No such command 'nosuch'"),
    (["run", "show"], "Missing argument"),
    (["run", "list", "--limit", "many"], "'many' is not a valid int"),
])
def test_usage_errors_are_one_line_with_the_help_to_read(project, args, needle):
    proc = run_cli(*args, cwd=project)
    assert proc.returncode == 2, proc
    line = one_line(proc.stderr)
    assert line.startswith("Error: ") and needle in line and "--help`" in line, line


def test_a_group_named_alone_shows_its_help(project):
    proc = run_cli("queue", cwd=project)
    assert proc.returncode == 2 and "pause" in proc.stdout


@pytest.mark.parametrize("value", ["0", "false", "no", ""])
def test_raise_errors_off_is_read_as_a_boolean(project, value):
    proc = run_cli("run", "show", "rs_nothing", cwd=project, env={"COSMOSKIT_RAISE_ERRORS": value})
    assert proc.returncode == 1 and one_line(proc.stderr).startswith("Error: no run matches")


def test_raise_errors_on_shows_the_traceback(project):
    proc = run_cli("run", "show", "rs_nothing", cwd=project, env={"COSMOSKIT_RAISE_ERRORS": "1"})
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_a_transfer_whose_runs_all_fail_does_not_exit_0(project, cli, videos):
    """An outside probe: `cosmoskit transfer` exited 0 when every run failed (guardrail block)."""
    pid = make_prompt(cli, "blocked EMULATOR_GUARDRAIL_BLOCK scene", videos["lone"])
    proc = run_cli("transfer", pid, "--weights", "edge=1", "--json", cwd=project)
    assert proc.returncode == 3, proc
    (run,) = json.loads(proc.stdout)  # the data is still printed, for scripts
    assert run["status"] == "failed" and run["reason"] == "guardrail"
    line = one_line(proc.stderr)
    assert f"{run['id']} failed (guardrail" in line


def test_worker_once_exits_3_when_a_run_it_ran_failed(project, cli, videos):
    good = make_prompt(cli, "fine", videos["lone"])
    bad = make_prompt(cli, "blocked EMULATOR_GUARDRAIL_BLOCK", videos["lone"])
    for pid in (good, bad):
        assert cli("transfer", pid, "--weights", "edge=1", "--queue").exit_code == 0
    proc = run_cli("worker", "--once", cwd=project)
    assert proc.returncode == 3, proc
    assert "1 of 2 run(s) did not complete" in proc.stderr.splitlines()[-1]
    ok = run_cli("worker", "--once", cwd=project)  # nothing left to run: success
    assert ok.returncode == 0, ok


def test_ctrl_c_says_where_the_runs_went_and_status_tells_the_truth(project, cli, videos):
    """An outside probe: Ctrl-C exited 130 silently, and `status` still said `running` after the model
    exited until someone ran `attach`."""
    configure(project, emulator={"seconds_per_chunk": 3})
    pid = make_prompt(cli, "interrupt me", videos["scene"])
    client = spawn(project, "transfer", pid, "--weights", "vis=1")
    batch = wait_for(lambda: next((b for b in ledger_batches() if b["state"] == "running"), None))
    client.send_signal(signal.SIGINT)
    _out, err = client.communicate(timeout=240)
    assert client.returncode == 130, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]  # after the plain progress lines of a client without a terminal
    assert line.startswith("Error: Interrupted: batch " + batch["id"]) and "cosmoskit attach" in line, line
    # the model goes on without its client; once it has exited, status settles the batch itself
    folder = Path(batch["handle"]["batch_dir"])
    wait_for(lambda: (folder / "exit_code").exists(), timeout=120)
    status = run_cli("status", "--json", cwd=project)
    assert status.returncode == 0, status
    assert all(not e["batches"] for e in json.loads(status.stdout)), "no batch shown running after it ended"
    (run,) = ledger_runs().values()
    assert run["status"] == "completed", run


@pytest.mark.parametrize("args, needle", [
    (["--seed", "99999999999999999999999"], "seed must be between 0 and 4294967295"),
    (["--seed", "-1"], "seed must be between 0"),
    (["--num-steps", "1000000000"], "num-steps must be between 1 and 1000"),
    (["--num-gpus", "0"], "num-gpus must be between 1 and 16"),
    (["--priority", "99999999999999999999999"], "priority must be an integer from -1000000 to 1000000"),
    (["--weights", "vis=2"], "outside 0..1"),
])
def test_every_numeric_parameter_has_a_range_checked_before_anything_is_queued(project, cli, videos, args, needle):
    """An outside probe: `transfer --seed 99999999999999999999999 --queue` was `internal error: TypeError`,
    and `num_steps: 1000000000` was accepted."""
    pid = make_prompt(cli, "ranges", videos["lone"])
    proc = run_cli("transfer", pid, "--weights", "edge=1", *args, "--queue", cwd=project)
    assert proc.returncode == 1, proc
    line = one_line(proc.stderr)
    assert needle in line and "internal error" not in line, line
    assert not ledger_runs(), "nothing was queued"


@pytest.mark.parametrize("yaml, needle", [
    ("transfer:\n  num_steps: 1000000000\n", "transfer.num_steps must be between 1 and 1000"),
    ("transfer:\n  seed: 99999999999999999999999\n", "transfer.seed must be between 0 and 4294967295"),
    ("transfer:\n  weights: {vis: 2}\n", "transfer.weights is not a valid set of weights"),
    ("transfer:\n  negative_prompt: \"a\\udcffb\"\n", "transfer.negative_prompt is not valid Unicode"),
])
def test_the_configuration_is_held_to_the_same_ranges(project, yaml, needle):
    (project / "cosmoskit.yaml").write_text((project / "cosmoskit.yaml").read_text() + yaml)
    proc = run_cli("config", "check", cwd=project)
    assert proc.returncode == 1, proc
    assert needle in one_line(proc.stderr)


def test_prompt_text_that_cannot_be_stored_is_refused_at_once(project, videos):
    # bytes that are not UTF-8 on the command line arrive as lone surrogates (PEP 383)
    import os
    import subprocess

    from conftest import cosmoskit_exe

    proc = subprocess.run([os.fsencode(cosmoskit_exe()), b"prompt", b"create", b"a \xff scene",
                           os.fsencode(str(videos["lone"]))], cwd=project, capture_output=True)
    assert proc.returncode == 1, proc
    line = one_line(proc.stderr.decode())
    assert "the prompt text is not valid Unicode" in line, line


def test_an_unknown_top_level_key_is_an_error_for_every_command(project, cli, videos):
    """An outside probe: `config check` refused `batchng:` but `transfer` silently ignored it."""
    (project / "cosmoskit.yaml").write_text((project / "cosmoskit.yaml").read_text() + "transferr:\n  seed: 3\n")
    for args in (["run", "list"], ["queue", "list"], ["config", "check"], ["transfer", "x", "--weights", "vis=1"]):
        proc = run_cli(*args, cwd=project)
        assert proc.returncode == 1, (args, proc)
        line = one_line(proc.stderr)
        assert f"{project / 'cosmoskit.yaml'}:" in line and "transferr is not a known key" in line, line


def test_a_shell_word_in_an_environment_name_is_refused_everywhere(project, cli, videos, tmp_path):
    """An outside probe: `model: env: {"BAD NAME;touch /tmp/x": 1}` passed `config check` and was written
    unquoted into launch.env, which ran `touch`."""
    marker = tmp_path / "pwned"
    pid = make_prompt(cli, "env names", videos["lone"])
    (project / "cosmoskit.yaml").write_text(
        (project / "cosmoskit.yaml").read_text().replace(
            "model:\n", f"model:\n  env: {{'BAD NAME;touch {marker}': 1}}\n", 1))
    for args in (["config", "check"], ["transfer", pid, "--weights", "edge=1"]):
        proc = run_cli(*args, cwd=project)
        assert proc.returncode == 1, proc
        assert "is not an environment variable name" in one_line(proc.stderr)
    assert not marker.exists()
    assert not list(project.glob("batches/*/launch.env")), "nothing was written for a shell"


def test_kill_on_the_local_executor_stops_its_batches(project, cli, videos):
    """An outside probe: `cosmoskit kill --host local` was `internal error: AttributeError … kill_all`."""
    configure(project, emulator={"seconds_per_chunk": 30})
    pid = make_prompt(cli, "kill me", videos["scene"])
    client = spawn(project, "transfer", pid, "--weights", "vis=1")
    batch = wait_for(lambda: next((b for b in ledger_batches() if b["state"] == "running"), None))
    proc = run_cli("kill", "--host", "local", "--json", cwd=project)
    assert proc.returncode == 0, proc
    done = json.loads(proc.stdout)
    assert done["batches"] == [batch["id"]] and done["stopped"], done
    client.communicate(timeout=240)
    (run,) = ledger_runs().values()
    assert run["status"] == "cancelled"


def test_prompt_text_is_printed_with_its_control_characters_escaped(project, cli, videos):
    pid = make_prompt(cli, "bell \x07 and escape \x1b[31m red", videos["lone"])
    for args in (["prompt", "show", pid], ["prompt", "list"]):
        proc = run_cli(*args, cwd=project)
        assert proc.returncode == 0, proc
        assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout, repr(proc.stdout)
        assert "\\x1b" in proc.stdout


def test_tables_survive_a_pipe_and_ids_feed_xargs(project, cli, videos):
    """An outside probe: `cosmoskit run list | grep failed` printed `│ rs_1a92d7 │ … │ 2026-12-0 │`."""
    pid = make_prompt(cli, "a long prompt text that would need wrapping in a narrow table " * 3, videos["lone"])
    ids = [r["id"] for r in json.loads(run_cli("transfer", pid, "--weights", "edge=1", "--seed", "1-3", "--queue",
                                               "--json", cwd=project).stdout)]
    plain = run_cli("run", "list", cwd=project)  # stdout is a pipe here
    assert plain.returncode == 0 and "│" not in plain.stdout and "…" not in plain.stdout
    for line, run_id in zip(plain.stdout.splitlines()[1:], sorted(ids, reverse=True), strict=False):
        assert line.split()[0] in ids and len(line.split()[0]) == len(run_id)
    quiet = run_cli("run", "list", "-q", cwd=project)
    assert sorted(quiet.stdout.split()) == sorted(ids)
    tsv = run_cli("run", "list", "--format", "tsv", cwd=project)
    header, *rows = tsv.stdout.rstrip("\n").split("\n")
    assert header.split("\t")[0] == "id" and len(rows) == 3
    assert all(len(r.split("\t")) == len(header.split("\t")) for r in rows)
    bad = run_cli("run", "list", "--operation", "upscal", cwd=project)
    assert bad.returncode == 1 and ("unknown operation 'upscal'; one of cosmos3-nano, cosmos3-super, enhance, "
                                    "transfer, transfer2.5, upscale") in bad.stderr
    retried = run_cli("queue", "cancel", *quiet.stdout.split(), cwd=project)
    assert retried.returncode == 0


def test_a_prompt_by_its_name_and_ids_that_match_nothing(project, cli, videos):
    proc = run_cli("prompt", "create", "a blocked street", str(videos["lone"]), "--name", "blocked", cwd=project)
    assert proc.returncode == 0, proc
    queued = run_cli("transfer", "blocked", "--weights", "edge=1", "--queue", "--json", cwd=project)
    assert queued.returncode == 0, queued
    missing = run_cli("attach", "bt_zz", cwd=project)
    line = one_line(missing.stderr)
    assert f"in the project at {project}" in line and "`cosmoskit status` shows them" in line, line
    assert "batch list" not in line, "only commands that exist are suggested"


def test_logs_follow_on_a_queued_run_waits_for_it_to_start(project, cli, videos):
    import subprocess

    pid = make_prompt(cli, "wait for me", videos["lone"])
    (run,) = json.loads(run_cli("transfer", pid, "--weights", "edge=1", "--queue", "--json", cwd=project).stdout)
    follower = spawn(project, "logs", run["id"], "-f", "--batch")
    said = follower.stderr.readline()  # the follower is waiting before the worker starts the run
    assert "is queued; waiting for it to start" in said, said
    worker = run_cli("worker", "--once", cwd=project)
    assert worker.returncode == 0, worker
    out, err = follower.communicate(timeout=240)
    assert follower.returncode == 0, err
    assert "model exited with code 0" in out
    assert subprocess  # (the follower is a real second process)


def test_report_open_without_a_browser_says_where_the_page_is(project, cli, videos):
    pid = make_prompt(cli, "no browser", videos["lone"])
    assert run_cli("transfer", pid, "--weights", "edge=1", cwd=project).returncode == 0
    proc = run_cli("report", "--open", cwd=project, env={"BROWSER": "false", "DISPLAY": ""})
    assert proc.returncode == 0, proc
    assert "no web browser could be opened here; open" in proc.stderr and "index.html" in proc.stderr


def test_upscale_names_its_own_option(project, cli, videos):
    proc = run_cli("upscale", "--video", str(videos["lone"]), "--weight", "2", cwd=project)
    assert proc.returncode == 1 and "--weight must be between 0 and 1, not 2" in one_line(proc.stderr)


def test_shell_completion_offers_what_only_the_project_knows(project, cli, videos):
    made = run_cli("prompt", "create", "a street", str(videos["lone"]), "--name", "street", "--json", cwd=project)
    pid = json.loads(made.stdout)["id"]
    (run,) = json.loads(run_cli("transfer", pid, "--weights", "edge=1", "--queue", "--json", cwd=project).stdout)

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        proc = run_cli(cwd=project, env={"_COSMOSKIT_COMPLETE": "complete_bash", "COMP_WORDS": line,
                                         "COMP_CWORD": str(len(words) - 1)})
        assert proc.returncode == 0, proc
        return proc.stdout.split()

    assert {pid, "street"} <= set(complete("cosmoskit transfer "))
    assert complete("cosmoskit transfer str") == ["street"]
    assert complete("cosmoskit run show rs_") == [run["id"]]
    assert "optimal" in complete("cosmoskit worker --strategy ")
    assert "local" in complete("cosmoskit status --host ")
    assert "transfer1" in complete("cosmoskit transfer --model ")
    assert "transfer" in complete("cosmoskit tra")
    shown = run_cli("--show-completion", cwd=project, env={"SHELL": "/bin/bash"})
    assert shown.returncode == 0 and "_COSMOSKIT_COMPLETE" in shown.stdout
