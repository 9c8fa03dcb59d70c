"""The drop folder's sidecar takes the model (`model:`): each weight set is checked by that model's own rules
before anything is queued, and the runs go to that model's operation (default_model without one)."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import configure


@pytest.mark.parametrize("data, problem", [
    ({"model": "transfer9"}, "model: unknown model 'transfer9'"),
    ({"model": "cosmos3-nano", "weights": "vis=1"}, "Cosmos 3 has no control 'vis'"),
    ({"model": "transfer2.5", "weights": {"edge": 1.5}}, "outside 0..1"),
    ({"model": "transfer2.5", "guidance": 7.5}, "guidance must be an integer"),
    ({"model": "cosmos3-nano", "weights": [{"edge": 1}, {"blur": 0}]}, "weights #2: weights is not a valid set"),
])
def test_a_model_checks_its_own_weights_with_the_line(data, problem):
    from cosmoskit_dropfolder import sidecar

    _side, problems = sidecar.check(data, "cosmos.yaml", {("model",): 3, ("weights",): 4, ("guidance",): 5})
    assert any(problem in p.text for p in problems), problems
    assert all(p.at is not None for p in problems)


def test_a_model_with_valid_weights_is_kept():
    from cosmoskit_dropfolder import sidecar

    side, problems = sidecar.check({"model": "cosmos3-nano", "weights": ["edge=1", {"edge": 1, "blur": 3}]})
    assert problems == [] and side.model == "cosmos3-nano" and len(side.runs) == 2
    side, problems = sidecar.check({"weights": "vis=1"})
    assert problems == [] and side.model is None, "without model: Transfer 1's rules, as before"


@pytest.mark.parametrize("model, weights, operation", [
    ("transfer2.5", "edge=0.5,depth=0.5", "transfer2.5"),
    ("cosmos3-nano", "depth=1,seg=3", "cosmos3-nano"),
])
def test_a_dropped_folder_queues_the_sidecars_model(project, cli, videos, model, weights, operation):
    configure(project, watch={"settle_seconds": 0.5, "rescan_seconds": 1.0})
    drop = project / "drop"
    shutil.copytree(videos["scene"], drop / "scene")
    (drop / "scene" / "cosmos.yaml").write_text(f"prompt: a warehouse\nmodel: {model}\nweights: {weights}\n")
    result = cli("watch", "--once", "--work", "--json")
    assert result.exit_code == 0, result
    [run] = cli("run", "list", "--json").json()
    assert run["operation"] == operation and run["status"] == "completed", run


def test_without_a_model_the_default_model_is_used(project, cli, videos):
    configure(project, watch={"settle_seconds": 0.5, "rescan_seconds": 1.0}, default_model="transfer2.5")
    drop = project / "drop"
    shutil.copytree(videos["scene"], drop / "scene")
    (drop / "scene" / "prompt.txt").write_text("a warehouse")
    result = cli("watch", "--once", "--json")
    assert result.exit_code == 0, result
    queued = [json.loads(line) for line in result.stdout.splitlines() if '"queued"' in line]
    assert queued
    listed = cli("queue", "list", "--json").json()["queue"]
    assert [r["model"] for r in listed] == ["transfer2.5"]
