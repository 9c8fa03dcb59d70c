"""The files written for the GPU host, checked key by key against docs/models/transfer1.md and the real example
specs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

# Copies of real T1 example specs from the cosmos-transfer1 repository (docs/models/transfer1.md's sources), kept with
# the tests.
EXAMPLES = Path(__file__).parent / "contract_examples"

VALID_HINTS = {"vis", "seg", "edge", "depth", "keypoint", "upscale", "hdmap", "lidar"}  # docs/models/transfer1.md §4
TOP_LEVEL_ARGS = {"prompt", "input_video_path", "negative_prompt", "sigma_max", "seed"}  # §2.1 keys we may use
CONTROL_KEYS = {"control_weight", "input_control", "ckpt_path", "input_control_prompt", "control_weight_prompt"}  # §2.2
LINE_KEYS = {"visual_input", "prompt", "control_overrides"}  # §3.1


def check_spec(spec: dict) -> None:
    """docs/models/transfer1.md §3-4: what transfer.py accepts, and its validation rules."""
    assert isinstance(spec, dict)
    for key, value in spec.items():
        if isinstance(value, dict):
            assert key in VALID_HINTS, f"Invalid hint_key: {key}"
            assert set(value) <= CONTROL_KEYS, f"{key}: unexpected keys {set(value) - CONTROL_KEYS}"
            w = value.get("control_weight", 0.5)
            assert isinstance(w, (int, float)) and w >= 0
            assert value.get("input_control") is None or isinstance(value["input_control"], str)
        else:
            assert key in TOP_LEVEL_ARGS, f"top-level argument {key} is not one we should write"
    has_video = bool(spec.get("input_video_path"))
    if not has_video:
        assert spec.get("sigma_max", 70) >= 80, "Must have 'input_video' specified if sigma_max < 80"
        for key, value in spec.items():
            if isinstance(value, dict):
                assert value.get("input_control"), f"{key} controlnet must have 'input_control' video"


def check_argv(argv: list[str]) -> dict[str, str]:
    """§1.3: transfer.py arguments as ``--key value``; the torchrun prefix of §1.1."""
    assert argv[:4] == ["torchrun", argv[1], "--nnodes=1", "--node_rank=0"]
    assert argv[1].startswith("--nproc_per_node=")
    script_args = argv[5:]
    assert not any(a.startswith("--") and "=" in a for a in script_args), script_args
    pairs, i = {}, 0
    while i < len(script_args):
        key = script_args[i]
        assert key.startswith("--"), key
        if i + 1 < len(script_args) and not script_args[i + 1].startswith("--"):
            pairs[key[2:]] = script_args[i + 1]
            i += 2
        else:
            pairs[key[2:]] = ""
            i += 1
    assert pairs.get("num_gpus", "1") == argv[1].split("=")[1], "--num_gpus must equal --nproc_per_node"
    return pairs


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_real_examples_pass_our_contract_check(name):
    check_spec(json.loads((EXAMPLES / name).read_text()))


def _prompt(cli, text, folder):
    result = cli("prompt", "create", text, str(folder), "--json")
    assert result.exit_code == 0, result
    return result.json()["id"]


def _dry(cli, *args):
    result = cli(*args, "--dry-run", "--json")
    assert result.exit_code == 0, result
    return result.json()


def test_single_run_spec_matches_example_shape(project, cli, videos):
    pid = _prompt(cli, "a robot arm hands over a cup", videos["lone"])
    dry = _dry(cli, "transfer", pid, "--weights", "edge=1.0")
    spec = json.loads(dry["files"]["spec.json"])
    check_spec(spec)
    example = json.loads((EXAMPLES / "inference_cosmos_transfer1_single_control_edge.json").read_text())
    # every key of the real example is written, with the same type
    for key, value in example.items():
        assert key in spec and type(spec[key]) is type(value), key
    assert spec["edge"] == {"input_control": None, "control_weight": 1.0}  # null: the model generates it
    assert spec["prompt"] == "a robot arm hands over a cup"
    assert Path(spec["input_video_path"]).name.endswith(".mp4")
    assert "batch.jsonl" not in dry["files"]
    argv = json.loads(dry["files"]["command.json"])["argv"]
    args = check_argv(argv)
    assert argv[4] == "cosmos_transfer1/diffusion/inference/transfer.py"
    assert args["fps"] == "30"  # the input's own rate, not the model's 24
    assert "guidance" in args and args["video_save_name"] == "output"
    assert args["controlnet_specs"].endswith("/spec.json")
    assert "offload_text_encoder_model" in args and "offload_guardrail_models" in args


def test_uniform_weights_example_with_precomputed_controls(project, cli, videos):
    pid = _prompt(cli, "office scene", videos["scene"])
    dry = _dry(cli, "transfer", pid, "--weights", "vis=0.25,edge=0.25,depth=0.25,seg=0.25")
    spec = json.loads(dry["files"]["spec.json"])
    check_spec(spec)
    example = json.loads((EXAMPLES / "inference_cosmos_transfer1_uniform_weights.json").read_text())
    assert [k for k in spec if isinstance(spec[k], dict)] == [k for k in example if isinstance(example[k], dict)]
    for hint in ("vis", "edge", "depth", "seg"):
        assert spec[hint]["control_weight"] == example[hint]["control_weight"] == 0.25
        assert set(example[hint]) <= set(spec[hint])
    # the prompt's own depth and seg videos are used; vis and edge are generated by the model
    assert spec["depth"]["input_control"] and spec["seg"]["input_control"]
    assert spec["depth"]["input_control"] != spec["seg"]["input_control"]
    assert spec["vis"]["input_control"] is None and spec["edge"]["input_control"] is None
    args = check_argv(json.loads(dry["files"]["command.json"])["argv"])
    assert args["fps"] == "24"


def test_batch_jsonl_with_mixed_controls(project, cli, videos):
    a = _prompt(cli, "first prompt", videos["scene"])
    b = _prompt(cli, "second prompt", videos["lone"])
    # one prompt has depth/seg videos, the other none; mixed control sets come from the engine API
    from cosmoskit._core import context
    from cosmoskit._core.engine import Engine

    engine = Engine(context.settings(), context.ledger())
    docs = engine.new_runs("transfer", [a], {"weights": "vis=0.5,depth=0.5"})
    docs += engine.new_runs("transfer", [b], {"weights": "edge=0.7"})
    job = engine.dry_run(docs)
    spec = json.loads(job.local("spec.json").read_text())
    check_spec(spec)
    raw = job.local("batch.jsonl").read_bytes()
    assert not raw.endswith(b"\n") and b"\n\n" not in raw, "no blank line anywhere (§3.1)"
    lines = [json.loads(line) for line in raw.split(b"\n")]
    assert len(lines) == 2
    union = [k for k in spec if isinstance(spec[k], dict)]
    assert union == ["vis", "edge", "depth"]
    assert spec["input_video_path"] == lines[0]["visual_input"], "validation reads input_video_path (§2.3)"
    for line in lines:
        assert set(line) == LINE_KEYS
        assert set(line["control_overrides"]) <= set(union), "overrides cannot add a control (§3.1)"
    first, second = lines
    assert first["prompt"] == "first prompt" and second["prompt"] == "second prompt"
    assert first["control_overrides"]["vis"]["control_weight"] == 0.5
    assert first["control_overrides"]["edge"]["control_weight"] == 0.0
    assert first["control_overrides"]["depth"]["input_control"], "its own depth video"
    assert second["control_overrides"]["edge"] == {"input_control": None, "control_weight": 0.7}
    assert second["control_overrides"]["vis"]["control_weight"] == 0.0
    assert second["control_overrides"]["depth"]["control_weight"] == 0.0
    command = json.loads(job.local("command.json").read_text())
    argv = command["argv"]
    args = check_argv(argv)
    assert args["batch_input_path"].endswith("/batch.jsonl") and "video_save_name" not in args
    # the launcher runs the runtime's command (here the emulator's), which ends with the model's own argv
    launch = job.local("command.args").read_bytes().split(b"\0")[:-1]
    assert launch == [a.encode() for a in command["launch"]] and command["runtime"] == "emulator"
    # the emulator reaches the host as one file: the zipapp bundle of remote/emulator/
    assert launch[-len(argv):] == [a.encode() for a in argv] and launch[1].endswith(b"cosmos_emulator.pyz")
    engine.close()


def test_upscaler_spec_and_arguments(project, cli, videos):
    dry = _dry(cli, "upscale", "--video", str(videos["lone"]), "--weight", "0.5")
    spec = json.loads(dry["files"]["spec.json"])
    check_spec(spec)
    example = json.loads((EXAMPLES / "inference_upscaler.json").read_text())
    assert set(spec) == set(example)
    assert spec["upscale"] == example["upscale"] == {"control_weight": 0.5}
    args = check_argv(json.loads(dry["files"]["command.json"])["argv"])
    assert args["num_steps"] == "10" and "batch_input_path" not in args and args["fps"] == "30"


def test_enhance_command(project, cli, videos):
    pid = _prompt(cli, 'a "quoted" prompt with $(dollar) and `ticks`', videos["lone"])
    dry = _dry(cli, "enhance", pid)
    argv = json.loads(dry["files"]["command.json"])["argv"]
    assert argv[4] == "cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py"
    assert argv[0] == "torchrun", "the upsampler reads RANK, so it needs torchrun (§4.2)"
    i = argv.index("--prompt")
    assert argv[i + 1] == 'a "quoted" prompt with $(dollar) and `ticks`'
    assert "--input_video" in argv and "--checkpoint_dir" in argv
