"""Transfer 2.5 (`transfer2.5`): the JSONL it is given, checked field by field against docs/models/transfer2.5.md
and upstream's own example specs; end to end through the CPU emulator on the local executor (a batch, a guardrail
block, a process that dies mid-batch and the relaunch of what it never ran, a client killed then reattached)."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from conftest import configure, ledger_batches, ledger_runs, running_batch, spawn, wait_for
from conftest import make_prompt as prompt

EXAMPLES = Path(__file__).parent / "contract_examples" / "transfer2.5"


def dry(cli, *args):
    result = cli("transfer", *args, "--model", "transfer2.5", "--dry-run", "--json")
    assert result.exit_code == 0, result
    return result.json()


def lines_of(text: str) -> list[dict]:
    assert "\n\n" not in text and not text.startswith("\n"), "no blank line anywhere (§4)"
    return [json.loads(line) for line in text.splitlines()]


def upstream_examples() -> list[dict]:
    found = []
    for path in sorted(EXAMPLES.rglob("*.json*")):
        text = path.read_text()
        found += [json.loads(text)] if path.suffix == ".json" else [json.loads(x) for x in text.splitlines()]
    return found


# ---------------------------------------------------------------------- the spec, field by field
def test_upstream_examples_pass_the_same_contract_check():
    from cosmoskit_transfer25 import spec

    examples = upstream_examples()
    assert len(examples) >= 10
    for line in examples:
        assert spec.problems(line) == [], line


def test_single_run_line_field_by_field(project, cli, videos):
    from cosmoskit_transfer25 import spec

    pid = prompt(cli, "a robot arm folds a cloth", videos["scene"])
    out = dry(cli, pid, "--weights", "edge=0.5,depth=0.5", "--seed", "7", "--guidance", "4", "--sigma-max", "80")
    folder = Path(out["folder"])
    (line,) = lines_of(out["files"]["batch.jsonl"])
    assert spec.problems(line) == []
    ((run_id,),) = [b["runs"] for b in out["plan"]]
    assert line["name"] == run_id
    assert line["prompt"] == "a robot arm folds a cloth"
    assert line["guidance"] == 4 and isinstance(line["guidance"], int), "guidance is an integer (§4)"
    assert line["sigma_max"] == "80", "sigma_max is written as a string (§4)"
    assert line["seed"] == 7 and line["num_steps"] == 35
    assert (line["resolution"], line["keep_input_resolution"], line["num_video_frames_per_chunk"],
            line["num_conditional_frames"]) == ("720", True, 93, 1)
    # the prompt's own depth video is a control_path; edge is computed from video_path with its preset
    assert line["depth"] == {"control_weight": 0.5, "control_path": line["depth"]["control_path"]}
    assert line["edge"] == {"control_weight": 0.5, "preset_edge_threshold": "medium"}
    assert "input_control" not in json.dumps(line), "Transfer 1's input_control is silently ignored upstream"
    staged = {i["name"] for i in json.loads((folder / "manifest.json").read_text())["inputs"]}
    for path in (line["video_path"], line["depth"]["control_path"]):
        # relative to the spec file's folder, where the executor stages them (upstream resolves from there)
        assert not path.startswith("/") and path in staged
    # upstream's own example has the same shape: every key it uses is one we write (prompt_path <-> prompt)
    example = json.loads((EXAMPLES / "robot_example" / "edge" / "robot_edge_spec.json").read_text())
    ours = set(line) | {"prompt_path"}
    assert set(example) <= ours and set(example["edge"]) <= set(line["depth"]) | {"control_path"}
    command = json.loads(out["files"]["command.json"])
    assert command["argv"] == ["python", "examples/inference.py", "-i", str(folder / "batch.jsonl"),
                               "-o", str(folder / "outputs"), "--keep-going"]


def test_no_sigma_max_and_a_negative_prompt(project, cli, videos):
    result = cli("prompt", "create", "a quiet street", str(videos["lone"]), "--negative", "blurry", "--json")
    assert result.exit_code == 0, result
    pid = result.json()["id"]
    (line,) = lines_of(dry(cli, pid, "--weights", "vis=1")["files"]["batch.jsonl"])
    assert "sigma_max" not in line, "null sigma_max: no input latent, left out"
    assert line["negative_prompt"] == "blurry"
    assert line["vis"] == {"control_weight": 1.0, "preset_blur_strength": "medium"}


def test_a_sweep_is_one_line_per_run_with_unique_names(project, cli, videos):
    from cosmoskit_transfer25 import spec

    a = prompt(cli, "first", videos["scene"])
    b = prompt(cli, "second", videos["scene"])
    out = dry(cli, a, b, "--weights", "depth=1", "--seed", "1-3", "--num-steps", "10,20", "--guidance", "0,7")
    lines = lines_of(out["files"]["batch.jsonl"])
    assert len(lines) == 2 * 3 * 2 * 2 and len({ln["name"] for ln in lines}) == len(lines)
    assert all(spec.problems(ln) == [] for ln in lines)
    assert {(ln["seed"], ln["num_steps"], ln["guidance"]) for ln in lines} == {
        (s, n, g) for s in (1, 2, 3) for n in (10, 20) for g in (0, 7)}
    # per-sample parameters share one process: one batch for the whole sweep
    assert out["batches"] == 1


def test_mixed_control_sets_and_the_multi_control_model(project, cli, videos):
    """One control: that control's checkpoint; more: the four-branch model (§6).  Runs keep the model their own
    controls pick, unless mix_control_sets lets the cost model put them together."""
    pid = prompt(cli, "mixed", videos["scene"])
    out = dry(cli, pid, "-w", "edge=1", "-w", "depth=1", "-w", "edge=0.5,depth=0.5", "-w", "vis=0.3,seg=0.7")
    assert out["batches"] == 3, "edge alone, depth alone, and the two multi-control runs together"
    multi = [b for b in out["plan"] if len(b["controls"]) > 1]
    assert len(multi) == 1 and len(multi[0]["runs"]) == 2
    # the mixed strategy merges whatever the rules let share a load: without mix_control_sets, still 3
    configure(project, batching={"strategy": "mixed"})
    out = dry(cli, pid, "-w", "edge=1", "-w", "depth=1", "-w", "edge=0.5,depth=0.5")
    assert out["batches"] == 3, "each control set picks its own checkpoint"
    configure(project, batching={"strategy": "mixed"}, **{"transfer2.5": {"mix_control_sets": True}})
    out = dry(cli, pid, "-w", "edge=1", "-w", "depth=1", "-w", "edge=0.5,depth=0.5")
    assert out["batches"] == 1
    (batch,) = out["plan"]
    assert batch["controls"] == ["depth", "edge"]
    lines = lines_of(out["files"]["batch.jsonl"])
    assert [sorted(k for k in ln if k in ("edge", "vis", "depth", "seg")) for ln in lines] == [
        ["edge"], ["depth"], ["depth", "edge"]], "each sample keeps its own controls; the process loads all four"


def test_cost_model_is_transfer25s_own():
    from cosmoskit._core.costmodel import CostModel
    from cosmoskit._core.strategy import Item
    from cosmoskit_transfer25 import contract

    assert [contract.chunks(t) for t in (1, 93, 94, 121, 185, 186, 5000, 9000)] == [1, 1, 2, 2, 2, 3, 55, 55]

    class Settings:
        def section(self, name, schema):
            from cosmoskit._core.schema import Located, apply

            return apply(schema, {}, Located(None), f"{name}.", None)

        def get(self, key, default=None):
            return default

    from cosmoskit_transfer25.operation import Transfer25

    model = Transfer25(Settings()).cost_model(CostModel())
    one = Item("a", ("transfer2.5",), frozenset({"edge"}), 1, 35, 0, "t")
    assert model.run_seconds(one, {"edge"}) == pytest.approx(445.55, abs=0.1), "H100 NVL seg, one 93-frame chunk"
    assert model.networks({"edge"}) == 1 and model.networks({"edge", "seg"}) == 4
    assert model.load_seconds({"edge", "seg"}) > model.load_seconds({"edge"})
    assert model.memory_gb({"edge"}) == pytest.approx(65.4) and model.max_runs == 32


@pytest.mark.parametrize("args, words", [
    (("--guidance", "7.5"), "guidance 7.5 is not an integer"),
    (("--guidance", "8"), "outside 0..7"),
    (("-w", "keypoint=1"), "Transfer 2.5 has no control 'keypoint'"),
    (("-w", "blur=1"), "Transfer 2.5 calls it vis"),
    (("-w", "edge=1.5"), "outside 0..1"),
    (("--num-gpus", "2"), "needs transfer2.5.disable_guardrails"),
    (("--sigma-max", "500"), "sigma-max must be between"),
])
def test_bad_input_is_one_line_and_nothing_is_queued(project, cli, videos, args, words):
    pid = prompt(cli, "refused", videos["scene"])
    result = cli("transfer", pid, "--model", "transfer2.5", *args)
    assert result.exit_code == 1, result
    (line,) = result.stderr.strip().splitlines()
    assert words in line, line
    assert cli("run", "list", "--json").json() == []


def test_run_create_and_queue_plan_take_the_model(project, cli, videos):
    pid = prompt(cli, "queued", videos["scene"])
    result = cli("run", "create", "transfer", pid, "--model", "transfer2.5", "--param", "weights=edge=1", "--queue",
                 "--json")
    assert result.exit_code == 0, result
    assert result.json()[0]["operation"] == "transfer2.5"
    assert cli("transfer", pid, "--weights", "vis=1", "--queue").exit_code == 0  # the default model: Transfer 1
    listed = cli("queue", "list", "--json").json()["queue"]
    assert sorted(r["model"] for r in listed) == ["transfer1", "transfer2.5"]
    planned = cli("queue", "plan", "--json").json()
    assert sorted(b["model"] for b in planned["batches"]) == ["transfer1", "transfer2.5"], "never one batch"
    only = cli("queue", "plan", "--model", "transfer2.5", "--json").json()
    assert [b["model"] for b in only["batches"]] == ["transfer2.5"] and only["runs"] == 1
    assert "unknown model" in cli("queue", "list", "--model", "transfer9").stderr
    configure(project, default_model="transfer2.5")
    shown = cli("config", "show", "--json").json()
    assert shown["settings"]["default_model"] == "transfer2.5"
    (run,) = cli("transfer", pid, "--weights", "vis=1", "--queue", "--json").json()
    assert run["operation"] == "transfer2.5"


# ---------------------------------------------------------------------- end to end through the emulator
def test_a_batch_end_to_end(project, cli, videos):
    pids = [prompt(cli, f"shot {i}", videos["scene"]) for i in range(2)]
    result = cli("transfer", *pids, "--model", "transfer2.5", "--weights", "edge=0.5,depth=0.5", "--seed", "1,2",
                 "--json")
    assert result.exit_code == 0, result
    runs = result.json()
    assert [r["status"] for r in runs] == ["completed"] * 4 and len({r["batch_id"] for r in runs}) == 1
    from cosmoskit._core.media import probe

    for run in runs:
        folder = project / "outputs" / f"run_{run['id']}"
        name = run["id"]
        assert next(iter(run["outputs"])) == "output.mp4"
        for f in ("output.mp4", f"{name}.json", f"{name}.txt", f"{name}_control_edge.mp4",
                  f"{name}_control_depth.mp4", "batch.jsonl", "command.json", "logs/run.log", "logs/debug.log"):
            assert (folder / f).is_file(), f
        info = probe(folder / "output.mp4")
        assert (info.width, info.height, info.frames, round(info.fps)) == (64, 36, 8, 24), "the input's own size"
        assert json.loads((folder / f"{name}.json").read_text())["seed"] == run["params"]["seed"]
        own = (folder / "logs" / "run.log").read_text()
        assert f"Processing sample {name}" in own and sum(f"Processing sample {r['id']}" in own for r in runs) == 1


def test_guardrail_block_fails_that_run_only(project, cli, videos):
    """Exit 0 with a blocked sample: upstream writes GUARDRAIL BLOCKED to debug.log only (§7-8)."""
    from cosmoskit._core import context
    from cosmoskit._core.engine import Engine
    from cosmoskit._core.foreground import run_now

    pids = [prompt(cli, t, videos["scene"]) for t in ("fine one", "bad EMULATOR_GUARDRAIL_BLOCK", "fine two")]
    engine = Engine(context.settings(), context.ledger())
    docs = [d for p in pids for d in engine.new_runs("transfer2.5", [p], {"weights": "edge=1"})]
    runs = run_now(engine, docs, quiet=True)
    engine.close()
    assert [r["status"] for r in runs] == ["completed", "failed", "completed"]
    blocked = runs[1]
    assert blocked["reason"] == "guardrail" and "GUARDRAIL BLOCKED" in blocked["error"], blocked["error"]
    assert blocked["attempts"] == 1 and len(ledger_batches()) == 1, "a block is final: nothing is relaunched"
    folder = project / "outputs" / f"run_{blocked['id']}"
    assert (folder / f"{blocked['id']}.json").is_file() and not (folder / "output.mp4").exists()
    batch = project / "batches" / blocked["batch_id"] / "outputs"
    assert "GUARDRAIL BLOCKED" in (batch / "debug.log").read_text()
    assert "GUARDRAIL BLOCKED" not in (batch / "console.log").read_text(), "the docs page's reading of upstream"


def test_a_process_that_dies_mid_batch_relaunches_what_it_never_ran_once(project, cli, videos, tmp_path):
    """Sample 2's input turns unreadable while sample 1 runs: the process exits 1 there, sample 3 never runs
    (§8).  Sample 1 is kept; 2 and 3 are relaunched once, in a batch of their own with a fresh output folder."""
    from cosmoskit._core.media import make_test_video

    configure(project, emulator={"seconds_per_chunk": 4})
    folders = []
    for i, source in enumerate(("testsrc", "testsrc2", "rgbtestsrc")):
        folder = tmp_path / f"shot{i}"
        make_test_video(folder / "color.mp4", source=source, width=64, height=36, frames=8, fps=24)
        folders.append(folder)
    pids = [prompt(cli, f"shot {i}", f) for i, f in enumerate(folders)]
    client = spawn(project, "transfer", *pids, "--model", "transfer2.5", "--weights", "edge=1", "--json")
    batch = wait_for(running_batch)
    first = Path(batch["handle"]["batch_dir"])
    wait_for(lambda: "chunk 1/1" in (first / "batch.log").read_text(errors="replace"))
    second = json.loads((first / "batch.jsonl").read_text().splitlines()[1])["video_path"]
    staged = first / second
    staged.unlink()  # a hard link into the store: replace it, never write through it
    staged.write_bytes(b"not a video any more")
    _out, err = client.communicate(timeout=300)
    assert client.returncode == 0, err
    runs = [ledger_runs()[r] for r in batch["runs"]]
    assert [r["status"] for r in runs] == ["completed"] * 3, runs
    assert [r["attempts"] for r in runs] == [1, 2, 2]
    batches = ledger_batches()
    assert len(batches) == 2 and batches[1]["runs"] == batch["runs"][1:]
    assert batches[0]["exit_code"] == 1 and batches[1]["exit_code"] == 0
    # each attempt has its own output folder: the logs of the first are still there
    assert "Processing sample" in (first / "outputs" / "debug.log").read_text()
    assert Path(batches[1]["handle"]["batch_dir"]) != first


def test_client_killed_mid_batch_then_reattached(project, cli, videos):
    configure(project, emulator={"seconds_per_chunk": 3})
    pid = prompt(cli, "survives its client", videos["scene"])
    client = spawn(project, "transfer", pid, "--model", "transfer2.5", "--weights", "edge=1,seg=1", "--seed", "1,2")
    batch = wait_for(running_batch)
    wait_for(lambda: (Path(batch["handle"]["batch_dir"]) / "batch.log").exists())
    os.kill(client.pid, signal.SIGKILL)
    client.wait()
    assert {r["status"] for r in ledger_runs().values()} == {"running"}
    result = cli("attach", "--json")
    assert result.exit_code == 0, result
    assert result.json()[batch["id"]] == "finished"
    runs = ledger_runs()
    assert {r["status"] for r in runs.values()} == {"completed"} and {r["attempts"] for r in runs.values()} == {1}
    assert len(ledger_batches()) == 1, "reattached, never relaunched"
