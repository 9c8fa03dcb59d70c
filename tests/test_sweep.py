"""Sweeps: prompts × weight sets × seeds × … in one command (cosmoskit._core.sweep and `cosmoskit transfer`)."""
from __future__ import annotations

import json

import pytest

from cosmoskit._core.errors import CosmoskitError
from cosmoskit._core.sweep import count, parse_values, variations

from conftest import ledger_batches, ledger_runs, make_prompt, run_cli


@pytest.mark.parametrize("text, kind, expected", [
    ("7", int, [7]),
    ("1,2,3", int, [1, 2, 3]),
    ("1-4", int, [1, 2, 3, 4]),
    ("1-3,10", int, [1, 2, 3, 10]),
    (" 5 - 6 , 8 ", int, [5, 6, 8]),
    ("3,7.5", float, [3.0, 7.5]),
    ("0", float, [0.0]),
    (12, int, [12]),
])
def test_values(text, kind, expected):
    assert parse_values("--x", text, kind) == expected


@pytest.mark.parametrize("text, kind, problem", [
    ("1,,2", int, "an empty value"),
    ("4-1", int, "from low to high"),
    ("1-999999999", int, "more than 100000 values"),
    ("1,x", int, "'x' is not an integer"),
    ("1.5", int, "'1.5' is not an integer"),
    ("1-2", float, "'1-2' is not a number"),
    ("1,2,1", int, "1 is given twice"),
    ("1-3,2", int, "2 is given twice"),
])
def test_bad_values(text, kind, problem):
    with pytest.raises(CosmoskitError, match=problem):
        parse_values("--x", text, kind)


def test_variations_are_every_combination_in_the_order_given():
    axes = {"weights": ["vis=1", "depth=1"], "seed": [1, 2, 3], "num_steps": []}
    got = variations(axes)
    assert got[:3] == [{"weights": "vis=1", "seed": 1}, {"weights": "vis=1", "seed": 2},
                       {"weights": "vis=1", "seed": 3}]
    assert len(got) == 6 == count(1, axes)
    assert count(4, axes) == 24
    assert variations({}) == [{}]


def test_a_sweep_queues_every_combination_once_under_one_sweep_id(project, cli, videos):
    """An outside probe: `transfer A B -w edge=0.6,depth=0.4 -w seg=1.0` kept only the last -w
    (two runs, both seg=1)."""
    a = make_prompt(cli, "first shot", videos["scene"])
    b = make_prompt(cli, "second shot", videos["scene"])
    proc = run_cli("transfer", a, b, "-w", "edge=0.6,depth=0.4", "-w", "seg=1.0", "--seed", "1,2", "--queue", "--json",
                   cwd=project)
    assert proc.returncode == 0, proc
    runs = json.loads(proc.stdout)
    got = [(r["prompt_id"], r["params"]["weights"], r["params"]["seed"]) for r in runs]
    assert got == [(p, w, s) for p in (a, b) for w in ({"edge": 0.6, "depth": 0.4}, {"seg": 1.0}) for s in (1, 2)]
    assert len({r["sweep"] for r in runs}) == 1 and runs[0]["sweep"].startswith("sw_")


def test_a_weight_set_names_each_control_once(project, cli, videos):
    a = make_prompt(cli, "dupe", videos["scene"])
    proc = run_cli("transfer", a, "-w", "depth=0.5,depth=0.7", "--queue", cwd=project)
    assert proc.returncode == 1 and "give depth twice" in proc.stderr
    assert not ledger_runs()


def test_dry_run_counts_the_runs_and_shows_the_plan(project, cli, videos):
    a = make_prompt(cli, "dry", videos["scene"])
    proc = run_cli("transfer", a, "-w", "vis=1", "-w", "vis=0.5", "--seed", "1-3", "--dry-run", "--json", cwd=project)
    assert proc.returncode == 0, proc
    shown = json.loads(proc.stdout)
    assert shown["runs"] == 6 and shown["batches"] == len(shown["plan"]) == 3, "the seed is a model argument: 3 loads"
    assert sum(len(b["runs"]) for b in shown["plan"]) == 6 and shown["gpu_seconds"] > 0
    assert "spec.json" in shown["files"]
    human = run_cli("transfer", a, "-w", "vis=1", "--seed", "1-3", "--dry-run", cwd=project)
    assert "3 run(s) in 3 batch(es), estimated GPU time" in human.stdout
    assert not ledger_runs(), "a dry run queues nothing"


def test_a_large_sweep_asks_first(project, cli, videos):
    a = make_prompt(cli, "large", videos["scene"])
    (project / "cosmoskit.yaml").write_text((project / "cosmoskit.yaml").read_text() + "submit:\n  confirm_above: 5\n")
    proc = run_cli("transfer", a, "--weights", "vis=1", "--seed", "1-6", "--queue", cwd=project)
    assert proc.returncode == 1 and "refusing to start 6 runs without confirmation (pass --yes)" in proc.stderr
    assert not ledger_runs()
    ok = run_cli("transfer", a, "--weights", "vis=1", "--seed", "1-6", "--queue", "--yes", cwd=project)
    assert ok.returncode == 0 and len(ledger_runs()) == 6


def test_a_sweep_run_now_shares_loads_as_the_strategy_plans(project, cli, videos):
    a = make_prompt(cli, "now one", videos["scene"])
    b = make_prompt(cli, "now two", videos["scene"])  # the same fps: a model argument of Transfer 1
    proc = run_cli("transfer", a, b, "-w", "vis=0.5,depth=0.5", "-w", "vis=1", "--json", cwd=project)
    assert proc.returncode == 0, proc
    runs = json.loads(proc.stdout)
    assert [r["status"] for r in runs] == ["completed"] * 4
    # runs of one control set share a load (the prompt is not a model argument); whether vis rides along in
    # the vis+depth load is the cost model's call (here a load of its own is cheaper)
    by_set: dict = {}
    for r in runs:
        by_set.setdefault(str(r["params"]["weights"]), set()).add(r["batch_id"])
    assert all(len(batches) == 1 for batches in by_set.values()), by_set
    assert len(ledger_batches()) <= 2
    # a control set that would make every run pay for the union's networks gets loads of its own
    proc = run_cli("transfer", a, b, "-w", "vis=1", "-w", "depth=1", "-w", "edge=0.5,seg=0.5", "--dry-run", "--json",
                   cwd=project)
    shown = json.loads(proc.stdout)
    assert shown["batches"] == 3 and shown["gpu_seconds"] <= shown["one_at_a_time_seconds"], shown
