"""Cosmos 3 transfer (`cosmos3-nano`, `cosmos3-super`): the JSONL it is given, checked field by field against
docs/models/cosmos3.md and the cookbook's own specs; end to end through the CPU emulator on the local executor
(a batch of mixed hints, Super under torchrun, no guardrail on transfer, a process that dies mid-batch and the
relaunch of what it never ran, a client killed then reattached)."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from conftest import configure, ledger_batches, ledger_runs, running_batch, spawn, wait_for
from conftest import make_prompt as prompt

EXAMPLES = Path(__file__).parent / "contract_examples" / "cosmos3"


def dry(cli, model, *args):
    result = cli("transfer", *args, "--model", model, "--dry-run", "--json")
    assert result.exit_code == 0, result
    return result.json()


def lines_of(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line]


def schema_keys() -> frozenset[str]:
    """Upstream's sample fields (OmniSampleOverrides), as the emulator mirrors them from docs/models/cosmos3.md §4."""
    from cosmoskit_remote.emulator import cosmos3

    return frozenset(cosmos3.sample_schema())


def cookbook() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((EXAMPLES / "specs").glob("*.json"))]


@pytest.fixture
def wsm_shot(tmp_path):
    """A driving shot with its world-scenario map: the one control Cosmos 3 has and Transfer has not."""
    from cosmoskit._core.media import make_test_video

    folder = tmp_path / "drive"
    make_test_video(folder / "color.mp4", source="testsrc2", width=64, height=36, frames=8, fps=24)
    make_test_video(folder / "wsm.mp4", source="rgbtestsrc", width=64, height=36, frames=8, fps=24)
    make_test_video(folder / "vis.mp4", source="testsrc", width=64, height=36, frames=8, fps=24)
    return folder


# ---------------------------------------------------------------------- the spec, field by field
def test_cookbook_specs_use_only_keys_we_write_and_pass_the_check():
    from cosmoskit_cosmos3 import spec

    known = schema_keys()
    for example in cookbook():
        assert set(example) <= known
        problems = spec.problems(example, known)
        # the cookbook predates emphasize_control_in_prompt's default change; nothing else is missing
        assert problems in ([], ["not written explicitly: emphasize_control_in_prompt"]), problems


def test_single_run_line_field_by_field(project, cli, videos):
    from cosmoskit_cosmos3 import spec

    pid = prompt(cli, "a robot arm folds a cloth", videos["scene"])
    out = dry(cli, "cosmos3-nano", pid, "--weights", "edge=1")
    folder = Path(out["folder"])
    (line,) = lines_of(out["files"]["batch.jsonl"])
    assert spec.problems(line, schema_keys()) == []
    ((run_id,),) = [b["runs"] for b in out["plan"]]
    assert line["name"] == run_id and line["extra"]["cosmoskit"]["run"] == run_id
    expected = {"model_mode": "video2video", "prompt": "a robot arm folds a cloth", "resolution": "720",
                "aspect_ratio": "16,9", "fps": 24, "num_frames": 8, "num_steps": 50, "guidance": 3.0,
                "control_guidance": 1.5, "shift": 10.0, "seed": 2026, "num_video_frames_per_chunk": 93,
                "num_conditional_frames": 1, "num_first_chunk_conditional_frames": 0,
                "share_vision_temporal_positions": True, "negative_metadata_mode": "none",
                "negative_prompt_keep_metadata": False, "emphasize_control_in_prompt": True}
    assert {k: line[k] for k in expected} == expected
    assert line["edge"] == {"weight": 1.0, "preset_edge_threshold": "medium"}, "weight, never control_weight"
    staged = {i["name"] for i in json.loads((folder / "manifest.json").read_text())["inputs"]}
    assert line["vision_path"] in staged and not line["vision_path"].startswith("/")
    # every key the cookbook's edge spec writes, we write (its prompt_path/negative_prompt_file: ours inline)
    example = json.loads((EXAMPLES / "specs" / "edge.json").read_text())
    assert set(example) - {"prompt_path", "negative_prompt_file"} <= set(line)
    command = json.loads(out["files"]["command.json"])
    assert command["argv"] == ["python", "-m", "cosmos_framework.scripts.inference", "--parallelism-preset=latency",
                               "-i", str(folder / "batch.jsonl"), "-o", str(folder / "outputs"),
                               "--checkpoint-path", "Cosmos3-Nano", "--no-guardrails", "--no-diffusion-cache"]
    assert "throughput" not in json.dumps(command)


def test_hint_sets_decide_the_written_defaults(project, cli, videos, wsm_shot):
    pid = prompt(cli, "a street", videos["scene"])
    lines = lines_of(dry(cli, "cosmos3-nano", pid, "-w", "depth=1,seg=3", "-w", "seg=1", "-w", "blur=1")
                     ["files"]["batch.jsonl"])
    several, seg, blur = lines
    assert (several["guidance"], several["control_guidance"]) == (6.0, 1.0), "several hints: the video defaults"
    assert (seg["guidance"], seg["control_guidance"]) == (3.0, 2.0), "one seg hint: upstream's tuned values"
    assert several["depth"] == {"weight": 1.0, "control_path": several["depth"]["control_path"]}
    assert blur["blur"] == {"weight": 1.0, "preset_blur_strength": "medium"}, "computed from vision_path"
    drive = prompt(cli, "a car on a highway", wsm_shot)
    wsm, vis = lines_of(dry(cli, "cosmos3-nano", drive, "-w", "wsm=1", "-w", "blur=1")["files"]["batch.jsonl"])
    assert (wsm["guidance"], wsm["control_guidance"], wsm["num_video_frames_per_chunk"]) == (1.0, 3.0, 101)
    assert wsm["wsm"]["control_path"]
    assert vis["blur"] == {"weight": 1.0, "control_path": vis["blur"]["control_path"]}, "the prompt's vis video"


def test_the_user_sees_the_weights_the_model_applies(project, cli, videos):
    pid = prompt(cli, "normalised", videos["scene"])
    (run,) = cli("transfer", pid, "--model", "cosmos3-nano", "-w", "depth=1,seg=3", "--queue", "--json").json()
    assert run["params"]["weights"] == {"depth": 1.0, "seg": 3.0}
    assert run["params"]["applied_weights"] == {"depth": 0.25, "seg": 0.75}
    from cosmoskit_cosmos3.operation import Nano

    assert Nano.summary(run).startswith("depth=0.25,seg=0.75 (given depth=1,seg=3)")


def test_super_runs_under_torchrun_with_a_master_port_of_its_own(project, cli, videos):
    from cosmoskit_cosmos3.operation import master_port

    pid = prompt(cli, "super", videos["scene"])
    out = dry(cli, "cosmos3-super", pid, "-w", "edge=1")
    argv = json.loads(out["files"]["command.json"])["argv"]
    assert argv[:6] == ["torchrun", "--nproc-per-node=4", "--master-addr=127.0.0.1", argv[3], "-m",
                        "cosmos_framework.scripts.inference"]
    assert argv[3] == f"--master-port={master_port(Path(out['folder']).name)}"
    assert argv[argv.index("--checkpoint-path") + 1] == "Cosmos3-Super" and "--parallelism-preset=latency" in argv
    ports = {master_port(f"bt_{i:012x}") for i in range(200)}
    assert len(ports) > 190 and all(20000 <= p < 40000 for p in ports), "batches on one host get their own port"


def test_mixing_hint_sets_costs_nothing(project, cli, videos):
    pid = prompt(cli, "mixed", videos["scene"])
    out = dry(cli, "cosmos3-nano", pid, "-w", "edge=1", "-w", "depth=1", "-w", "edge=1,blur=1,seg=1",
              "--seed", "1,2", "--num-steps", "10,50", "--guidance", "2,4")
    assert out["batches"] == 1 and out["runs"] == 24, "one omni model; per-sample parameters"


def test_cost_model_is_cosmos3s_own(project):
    from cosmoskit._core import context
    from cosmoskit._core.costmodel import CostModel
    from cosmoskit._core.strategy import Item
    from cosmoskit_cosmos3 import contract
    from cosmoskit_cosmos3.operation import Nano, Super

    assert [contract.round_chunk(c) for c in (93, 94, 121, 101, 1)] == [93, 97, 121, 101, 1]
    assert [contract.chunks(t) for t in (1, 8, 93, 94, 185, 186)] == [1, 1, 1, 2, 2, 3]
    assert contract.chunks(200, 121) == 2 and contract.chunks(100, 94) == 2  # C = 97
    nano, sup = Nano(context.settings()), Super(context.settings())
    model = nano.cost_model(CostModel())
    assert model.load_seconds(set()) == model.load_seconds({"edge", "depth", "seg"}), "one omni model"
    run = {"params": {"weights": {"edge": 1.0}, "control_guidance": 1.5}}
    two = {"params": {"weights": {"edge": 1.0, "seg": 1.0}, "control_guidance": 1.0}}
    assert nano.work(run, None) == pytest.approx(1.5), "control_guidance not 1: a third forward"
    assert nano.work(two, None) == pytest.approx(1.5), "a second hint's tokens"
    item = Item("a", ("x",), frozenset({"edge"}), 1, 35, 0, "t", work=1.0)
    assert model.run_seconds(item, {"edge"}) == model.run_seconds(item, {"edge", "seg", "depth"})
    assert sup.cost_model(CostModel()).memory_base_gb == 48.0 and model.memory_base_gb == pytest.approx(68.7)


@pytest.mark.parametrize("args, words", [
    (("-w", "depth=0.5,seg=0.5"), "cannot compute a depth or seg control"),
    (("-w", "vis=1"), "Transfer's vis is Cosmos 3's blur"),
    (("-w", "keypoint=1"), "Cosmos 3 has no control 'keypoint'"),
    (("-w", "edge=0"), "at least one control weight must be above 0"),
    (("--sigma-max", "80"), "takes no sigma-max"),
    (("--guidance", "8"), "guidance must be between"),
    (("--param", "control_guidance=11"), "control-guidance must be between"),
])
def test_bad_input_is_one_line_and_nothing_is_queued(project, cli, videos, args, words):
    pid = prompt(cli, "refused", videos["lone"])  # no depth or seg video
    result = cli("transfer", pid, "--model", "cosmos3-nano", *args)
    assert result.exit_code == 1, result
    (line,) = result.stderr.strip().splitlines()
    assert words in line, line
    assert cli("run", "list", "--json").json() == []


def test_super_takes_four_or_eight_gpus(project, cli, videos):
    pid = prompt(cli, "super", videos["scene"])
    result = cli("transfer", pid, "--model", "cosmos3-super", "--num-gpus", "2")
    assert result.exit_code == 1 and "4 or 8" in result.stderr


# ---------------------------------------------------------------------- end to end through the emulator
def test_a_batch_of_mixed_hints_end_to_end(project, cli, videos):
    from cosmoskit._core.media import probe

    pid = prompt(cli, "a forklift in a warehouse", videos["scene"])
    result = cli("transfer", pid, "--model", "cosmos3-nano", "-w", "edge=1", "-w", "edge=0.5,blur=0.5",
                 "-w", "depth=1,seg=1", "--json")
    assert result.exit_code == 0, result
    runs = result.json()
    assert [r["status"] for r in runs] == ["completed"] * 3 and len({r["batch_id"] for r in runs}) == 1
    for run in runs:
        folder = project / "outputs" / f"run_{run['id']}"
        assert next(iter(run["outputs"])) == "output.mp4"
        for f in ("output.mp4", "sample_args.json", "sample_outputs.json", "batch.jsonl", "command.json",
                  "logs/run.log", "logs/debug.log", *(f"control_{h}.mp4" for h in run["params"]["weights"])):
            assert (folder / f).is_file(), f
        assert json.loads((folder / "sample_outputs.json").read_text())["status"] == "success"
        args = json.loads((folder / "sample_args.json").read_text())
        assert args["extra"]["cosmoskit"]["run"] == run["id"] and args["seed"] == 2026
        info = probe(folder / "output.mp4")
        assert (info.width, info.height, info.frames, round(info.fps)) == (1280, 720, 8, 24), "the 720p 16:9 bucket"


def test_super_end_to_end_under_torchrun(project, cli, videos):
    pid = prompt(cli, "super", videos["scene"])
    (run,) = cli("transfer", pid, "--model", "cosmos3-super", "-w", "edge=1", "--json").json()
    assert run["status"] == "completed", run
    log = (project / "outputs" / f"run_{run['id']}" / "logs" / "batch.log").read_text()
    assert "Cosmos3-Super" in log


def test_no_guardrail_on_the_transfer_path(project, cli, videos):
    pid = prompt(cli, "bad EMULATOR_GUARDRAIL_BLOCK", videos["scene"])
    (run,) = cli("transfer", pid, "--model", "cosmos3-nano", "-w", "edge=1", "--json").json()
    assert run["status"] == "completed", "upstream runs no guardrail on transfer (docs/models/cosmos3.md §8)"


def test_a_process_that_dies_mid_batch_relaunches_what_it_never_ran_once(project, cli, videos):
    """Out of memory at the second sample (two hints, the emulator's limit one): the process ends there, the third
    never runs (§8).  The first is kept; the others are relaunched once, each alone after an out-of-memory."""
    configure(project, emulator={"oom_above_controls": 1})
    pid = prompt(cli, "memory", videos["scene"])
    result = cli("transfer", pid, "--model", "cosmos3-nano", "-w", "edge=1", "-w", "depth=1,seg=1", "-w", "blur=1",
                 "--json")
    assert result.exit_code == 3, result
    first, big, last = result.json()
    assert first["status"] == "completed" and first["attempts"] == 1
    assert big["status"] == "failed" and big["reason"] == "oom" and big["attempts"] == 2
    assert last["status"] == "completed" and last["attempts"] == 2
    batches = ledger_batches()
    assert batches[0]["exit_code"] == 1 and len(batches) == 3, "the shared batch, then each relaunched run alone"
    out = project / "batches" / batches[0]["id"] / "outputs"
    assert (out / big["id"] / "sample_args.json").is_file() and not (out / big["id"] / "sample_outputs.json").exists()
    assert not (out / last["id"]).exists(), "never reached"


def test_client_killed_mid_batch_then_reattached(project, cli, videos):
    configure(project, emulator={"seconds_per_chunk": 3})
    pid = prompt(cli, "survives its client", videos["scene"])
    client = spawn(project, "transfer", pid, "--model", "cosmos3-nano", "--weights", "edge=1,seg=1", "--seed", "1,2")
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
