"""Prompts and runs on the command line: create, list, show, delete, rate, verify; ids by prefix."""
from __future__ import annotations

import shutil
from pathlib import Path


def create(cli, text, folder, *extra):
    result = cli("prompt", "create", text, str(folder), "--json", *extra)
    assert result.exit_code == 0, result
    return result.json()


def test_create_from_folder_probes_and_hashes(project, cli, videos):
    doc = create(cli, "Robot arm hands a coffee cup to a woman in a modern office", videos["scene"])
    assert doc["id"].startswith("ps_")
    assert doc["name"] == "robot-arm-hands-coffee"
    assert set(doc["inputs"]) == {"rgb", "depth", "seg"}
    rgb = doc["inputs"]["rgb"]
    assert Path(rgb["path"]).is_absolute() and len(rgb["sha256"]) == 64
    assert (rgb["frames"], rgb["fps"], rgb["width"], rgb["height"]) == (8, 24.0, 64, 36)
    again = create(cli, "Robot arm hands a coffee cup again", videos["scene"])
    assert again["name"] == "robot-arm-hands-coffee-2", "names stay unique"
    named = create(cli, "whatever", videos["lone"], "--name", "mine", "--negative", "blurry")
    assert named["name"] == "mine" and named["negative_prompt"] == "blurry" and set(named["inputs"]) == {"rgb"}


def test_create_refuses_ambiguous_and_mismatched(project, cli, videos, tmp_path):
    two = tmp_path / "two"
    two.mkdir()
    shutil.copy(videos["lone"], two / "rgb.mp4")
    shutil.copy(videos["lone"], two / "input.mp4")
    result = cli("prompt", "create", "x", str(two))
    assert result.exit_code == 1 and "several RGB videos" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("prompt", "create", "x", str(empty))
    assert result.exit_code == 1 and "no RGB video" in result.stderr
    other_fps = tmp_path / "fps"
    other_fps.mkdir()
    shutil.copy(videos["scene"] / "color.mp4", other_fps / "color.mp4")
    from cosmoskit._core.media import make_test_video

    make_test_video(other_fps / "depth.mp4", width=64, height=36, frames=8, fps=30)
    result = cli("prompt", "create", "x", str(other_fps))
    assert result.exit_code == 1 and "30 fps" in result.stderr
    assert cli("prompt", "list", "--json").json() == []


def test_list_search_filters_and_highlight(project, cli, videos):
    a = create(cli, "A Warehouse at night", videos["lone"])
    b = create(cli, "sunny beach", videos["lone"])
    cli("transfer", b["id"], "--queue")
    found = cli("prompt", "list", "--search", "WAREHOUSE", "--json").json()
    assert [p["id"] for p in found] == [a["id"]]
    assert [p["id"] for p in cli("prompt", "list", "--has-runs", "--json").json()] == [b["id"]]
    assert [p["id"] for p in cli("prompt", "list", "--no-runs", "--json").json()] == [a["id"]]
    assert len(cli("prompt", "list", "--limit", "1", "--json").json()) == 1
    human = cli("prompt", "list", "--search", "warehouse")
    assert human.exit_code == 0 and "Warehouse" in human.stdout and "beach" not in human.stdout


def test_show_and_ids_by_prefix(project, cli, videos):
    doc = create(cli, "prefix test", videos["lone"])
    runs = cli("transfer", doc["id"], "--queue", "--json").json()
    shown = cli("prompt", "show", doc["id"][3:9], "--json").json()
    assert shown["id"] == doc["id"] and [r["id"] for r in shown["runs"]] == [runs[0]["id"]]
    assert cli("run", "show", runs[0]["id"][:7], "--json").json()["id"] == runs[0]["id"]
    bad = cli("run", "show", "rs_zzzz")
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: no run matches")


def test_ambiguous_prefix(project, cli, videos):
    from cosmoskit._core import context

    with context.ledger().transaction() as tx:
        for rid in ("rs_abc111111111", "rs_abc222222222"):
            tx.add_run({"id": rid, "prompt_id": None, "operation": "transfer", "params": {}})
    result = cli("run", "show", "abc")
    assert result.exit_code == 1 and "matches 2 runs" in result.stderr
    assert cli("run", "show", "abc1", "--json").json()["id"] == "rs_abc111111111"


def test_run_list_filters_and_rate(project, cli, videos):
    p1 = create(cli, "one", videos["lone"])
    p2 = create(cli, "two", videos["lone"])
    done = cli("transfer", p1["id"], "--weights", "edge=1", "--json").json()[0]
    queued = cli("transfer", p2["id"], "--queue", "--json").json()[0]
    assert [r["id"] for r in cli("run", "list", "--json").json()] == [queued["id"], done["id"]]
    assert [r["id"] for r in cli("run", "list", "--status", "completed", "--json").json()] == [done["id"]]
    assert [r["id"] for r in cli("run", "list", "--prompt", p2["id"], "--json").json()] == [queued["id"]]
    assert cli("run", "list", "--operation", "upscale", "--json").json() == []
    assert cli("run", "list", "--status", "bogus").exit_code == 1
    assert cli("run", "rate", done["id"], "4").exit_code == 0
    assert cli("run", "show", done["id"], "--json").json()["rating"] == 4
    assert "1 to 5" in cli("run", "rate", done["id"], "9").stderr


def test_delete_keeps_outputs_unless_asked_and_refuses_active(project, cli, videos):
    p = create(cli, "to delete", videos["lone"])
    done = cli("transfer", p["id"], "--weights", "edge=1", "--json").json()[0]
    queued = cli("transfer", p["id"], "--queue", "--json").json()[0]
    result = cli("prompt", "delete", p["id"], "--yes")
    assert result.exit_code == 1 and "cancel them first" in result.stderr
    assert cli("run", "delete", queued["id"], "--yes").exit_code == 1
    assert cli("cancel", queued["id"]).exit_code == 0
    folder = project / "outputs" / f"run_{done['id']}"
    result = cli("prompt", "delete", p["id"], "--yes")
    assert result.exit_code == 0, result
    assert "2 run(s)" in result.stdout and "Keeps 1 run folder" in result.stdout
    assert folder.is_dir(), "outputs are kept by default"
    assert cli("prompt", "list", "--json").json() == [] and cli("run", "list", "--json").json() == []


def test_delete_all_needs_typed_confirmation(project, cli, videos):
    p = create(cli, "first", videos["lone"])
    create(cli, "second", videos["lone"])
    done = cli("transfer", p["id"], "--weights", "edge=1", "--json").json()[0]
    # no terminal, no --yes: refused
    assert cli("prompt", "delete", "--all").exit_code == 1
    assert len(cli("prompt", "list", "--json").json()) == 2
    result = cli("prompt", "delete", "--all", "--delete-outputs", "--yes")
    assert result.exit_code == 0, result
    assert cli("prompt", "list", "--json").json() == []
    assert not (project / "outputs" / f"run_{done['id']}").exists()


def test_verify_finds_and_fixes_without_losing_data(project, cli, videos, tmp_path):
    src = tmp_path / "clip.mp4"
    shutil.copy(videos["lone"], src)
    p = create(cli, "verify me", src)
    done = cli("transfer", p["id"], "--weights", "edge=1", "--json").json()[0]
    assert cli("verify").exit_code == 0
    # 1. an input goes missing, 2. an output vanishes, 3. a run disappears from the ledger but its folder stays
    src.unlink()
    (project / done["outputs"]["output.mp4"]).unlink()
    other = cli("transfer", create(cli, "other", videos["lone"])["id"], "--weights", "vis=1", "--json").json()[0]
    from cosmoskit._core import context

    with context.ledger().transaction() as tx:
        tx.delete_run(other["id"])
    report = cli("verify", "--json")
    assert report.exit_code == 1
    kinds = {(f["kind"], f["subject"]) for f in report.json()}
    assert ("input", p["id"]) in kinds and ("output", done["id"]) in kinds and ("orphan", other["id"]) in kinds
    fixed = cli("verify", "--fix", "--json")
    actions = {f["subject"]: f for f in fixed.json()}
    assert actions[other["id"]]["fixed"] and actions[done["id"]]["fixed"] and not actions[p["id"]]["fixed"]
    assert cli("run", "show", other["id"], "--json").json()["status"] == "completed", "re-imported from run.json"
    assert cli("run", "show", done["id"], "--json").json()["missing_outputs"] == ["output.mp4"]
    # only the missing input is left, and it needs the user
    left = cli("verify", "--json").json()
    assert [f["kind"] for f in left] == ["input"]


def test_verify_requeues_runs_stuck_without_a_batch(project, cli, videos):
    p = create(cli, "stuck", videos["lone"])
    run = cli("transfer", p["id"], "--queue", "--json").json()[0]
    from cosmoskit._core import context

    with context.ledger().transaction() as tx:
        tx.update_run(run["id"], status="running", batch_id="bt_gone0000000")
    assert {f["kind"] for f in cli("verify", "--json").json()} == {"stuck"}
    cli("verify", "--fix")
    assert cli("run", "show", run["id"], "--json").json()["status"] == "queued"
