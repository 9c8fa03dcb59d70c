"""The emulator as Cosmos Transfer 2.5 (examples/inference.py), run on upstream's own example specs.

Real processes, real ffmpeg (imageio-ffmpeg), tiny videos made in place of the examples' own;
the specs are copied unchanged from upstream (tests/contract_examples/transfer2.5/SOURCES.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emulator_media import make_video, read_video

ROOT = Path(__file__).resolve().parents[1]
EMULATOR = ROOT / "remote" / "cosmos_emulator.py"
EXAMPLES = ROOT / "tests" / "contract_examples" / "transfer2.5"
SCRIPT = ["python", "examples/inference.py"]
COMMENT = "cosmos-emulator: CPU stand-in, not a model output"
BANNER = "[cosmos-emulator] CPU emulator of Cosmos Transfer 2.5 \u2014 outputs are NOT model outputs"
PROMPT = "The video is a demonstration of robotic manipulation, a robot arm folds a cloth."


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COSMOS_") and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
                                                        "MASTER_ADDR", "MASTER_PORT")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(args, cwd, env=None, prefix=SCRIPT):
    return subprocess.run([sys.executable, str(EMULATOR), *prefix, *[str(a) for a in args]], cwd=str(cwd),
                          env=env or _env(), capture_output=True, text=True,
                          encoding="utf-8", timeout=300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Upstream's assets/ folder with its specs, plus small stand-ins for the videos and prompts they name."""
    root = tmp_path_factory.mktemp("assets") / "assets"
    shutil.copytree(EXAMPLES, root)
    for example in ("robot", "car"):
        d = root / f"{example}_example"
        (d / f"{example}_prompt.txt").write_text(PROMPT + "\n")
        make_video(d / f"{example}_input.mp4", 64, 36, 100, 16)  # 100 frames: two 93-frame chunks
        for key, source in (("edge", "testsrc"), ("depth", "rgbtestsrc"), ("seg", "rgbtestsrc"), ("vis", "testsrc")):
            (d / key).mkdir(exist_ok=True)
            make_video(d / key / f"{example}_{key}.mp4", 64, 36, 100, 16, source=source)
    make_video(root / "short_control.mp4", 64, 36, 50, 16, source="testsrc")
    return root


def write_spec(path, spec):
    Path(path).write_text(json.dumps(spec))
    return Path(path)


def edge_sample(tree, **changes):
    """robot_edge_spec.json with absolute paths, so a spec written elsewhere names the same files."""
    spec = {"name": "robot_edge", "prompt_path": str(tree / "robot_example/robot_prompt.txt"),
            "video_path": str(tree / "robot_example/robot_input.mp4"), "guidance": 3,
            "edge": {"control_path": str(tree / "robot_example/edge/robot_edge.mp4"), "control_weight": 1.0}}
    spec.update(changes)
    return spec


def sidecar(out):
    return json.loads((out / "emulator.json").read_text())


# --------------------------------------------------------------------------- outputs


def test_edge_example_spec_writes_upstreams_flat_layout(tree, tmp_path):
    out = tmp_path / "outputs" / "edge"
    r = run(["-i", tree / "robot_example/edge/robot_edge_spec.json", "-o", out], tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml", "console.log", "debug.log", "emulator.json", "robot_edge.json", "robot_edge.mp4",
        "robot_edge.txt", "robot_edge_control_edge.mp4"]
    video = read_video(out / "robot_edge.mp4")
    # keep_input_resolution (default true): the input's own size; fps = the input's
    assert (video["width"], video["height"], video["fps"], video["frames"]) == (64, 36, 16, 100)
    assert video["comment"] == COMMENT and video["codec"] == "h264"
    control = read_video(out / "robot_edge_control_edge.mp4")
    assert (control["width"], control["height"], control["frames"], control["comment"]) == (64, 36, 100, COMMENT)
    assert (out / "robot_edge.txt").read_text() == PROMPT  # the prompt file, stripped
    dumped = json.loads((out / "robot_edge.json").read_text())
    assert dumped["prompt_path"] == str(tree / "robot_example/robot_prompt.txt")  # resolved from the spec's folder
    assert dumped["video_path"] == str(tree / "robot_example/robot_input.mp4")
    assert dumped["edge"] == {"control_path": str(tree / "robot_example/edge/robot_edge.mp4"), "control_weight": 1.0,
                              "mask_path": None, "mask_prompt": None, "preset_edge_threshold": "medium"}
    assert (dumped["seed"], dumped["guidance"], dumped["sigma_max"], dumped["num_steps"]) == (2025, 3, None, 35)
    assert dumped["num_video_frames_per_chunk"] == 93 and dumped["keep_input_resolution"] is True
    side = sidecar(out)
    assert side["is_model_output"] is False and side["model"] == "Cosmos Transfer 2.5"
    sample = side["samples"]["robot_edge"]
    assert (sample["status"], sample["chunks"], sample["frames"], sample["fps"]) == ("generated", 2, 100, 16)
    assert sample["controls"]["edge"]["generated"] is False
    assert r.stdout.splitlines()[0] == BANNER
    assert "[cosmos-emulator] sample 1/1 robot_edge chunk 2/2" in r.stdout
    console = (out / "console.log").read_text().splitlines()
    assert console[0] == BANNER
    assert any(ln.endswith("|INFO|cosmos_transfer2/inference.py:146:__init__] Found 1 hint keys across all samples")
               for ln in console)
    assert any(ln.endswith(f"] Generated video saved to {out}/robot_edge.mp4") and "|SUCCESS|" in ln for ln in console)
    assert not any("multicontrol" in ln for ln in console)
    # per-chunk progress comes from a "._src" module: debug.log only, as upstream's console filter does
    assert not any("Generating chunk" in ln for ln in console)
    assert "Generating chunk 2/2" in (out / "debug.log").read_text()
    assert "cosmos-emulator" in (out / "config.yaml").read_text()


def test_batch_jsonl_resolves_paths_from_its_folder_and_computes_missing_controls(tree, tmp_path):
    out = tmp_path / "seg"
    r = run(["-i", tree / "seg.jsonl", "-o", out, "--disable-guardrails"], tmp_path)
    assert r.returncode == 0, r.stderr
    names = ["robot_seg", "car_seg", "car_seg_on_the_fly"]
    for name in names:
        for suffix in (".json", ".mp4", ".txt", "_control_seg.mp4"):
            assert (out / f"{name}{suffix}").is_file(), name + suffix
    assert sidecar(out)["samples"]["car_seg_on_the_fly"]["controls"]["seg"]["generated"] is True
    assert sidecar(out)["samples"]["car_seg"]["controls"]["seg"]["generated"] is False
    console = (out / "console.log").read_text()
    assert f"Generating 3 samples: {names}" in console
    assert "Guardrail checks on prompt are disabled" in console and "Running guardrail" not in console
    order = [ln.split("] ", 1)[1] for ln in console.splitlines() if "Processing sample" in ln]
    assert order == [f"[{i + 1}/3] Processing sample {n}" for i, n in enumerate(names)]


def test_mixing_hint_sets_in_one_process_switches_to_the_multicontrol_model(tree, tmp_path):
    out = tmp_path / "mixed"
    r = run(["-i", tree / "robot_example/edge/robot_edge_spec.json", tree / "robot_example/depth/robot_depth_spec.json",
             "-o", out], tmp_path, env=_env(COSMOS_EMULATOR_SECONDS_PER_CHUNK="0.05"))
    assert r.returncode == 0, r.stderr
    console = (out / "console.log").read_text()
    assert "Found 2 hint keys across all samples" in console
    assert "|WARNING|" in console and "Loading the multicontrol model. Multicontrol inference is not strictly equal" \
        in console
    assert "branches=4" in r.stdout and "switch this process to the four-branch multicontrol model" in r.stdout
    side = sidecar(out)
    assert side["multicontrol"] is True and side["hint_keys"] == ["edge", "depth"]
    # each sample keeps its own controls; the missing key of the batch runs at weight 0
    assert side["samples"]["robot_edge"]["effective_weights"] == {"edge": 1.0, "depth": 0.0}
    assert (out / "robot_depth_control_depth.mp4").is_file() and not (out / "robot_depth_control_edge.mp4").exists()
    # two batch keys: each 93-frame chunk costs 2 x SECONDS_PER_CHUNK (proportional default)
    assert r.stdout.count("(simulated 0.10 s)") == 4


def test_multicontrol_example_with_masks_and_on_the_fly_vis(tree, tmp_path):
    out = tmp_path / "mc"
    spec = tmp_path / "one.jsonl"
    lines = (tree / "multicontrol.jsonl").read_text().splitlines()
    mask_line = next(ln for ln in lines if '"robot_seg_mask_prompt"' in ln)
    (tree / "robot_example/vis").mkdir(exist_ok=True)
    spec.write_text(json.dumps({**json.loads(mask_line)}).replace(
        "robot_example/", str(tree / "robot_example") + "/") + "\n")
    r = run(["-i", spec, "-o", out], tmp_path)
    assert r.returncode == 0, r.stderr
    for key in ("edge", "vis", "depth", "seg"):
        assert (out / f"robot_seg_mask_prompt_control_{key}.mp4").is_file()
    assert (out / "robot_seg_mask_prompt_mask_seg.mp4").is_file()
    assert "Mask for seg saved to" in (out / "console.log").read_text()


def test_timing_knobs_shape_the_simulated_chunks(tree, tmp_path):
    env = _env(COSMOS_EMULATOR_SECONDS_PER_CHUNK="0.07", COSMOS_EMULATOR_CONTROL_FACTOR="0.5",
               COSMOS_EMULATOR_LOAD_SECONDS="0.01", COSMOS_EMULATOR_LOAD_SECONDS_PER_CONTROL="0.02")
    spec = write_spec(tmp_path / "s.json", edge_sample(tree, num_steps=70))
    r = run(["-i", spec, "-o", tmp_path / "o"], tmp_path, env)
    assert r.returncode == 0, r.stderr
    # one branch: 0.07 x 70/35 = 0.14 s a chunk; load 0.01 + 0.02 x 1
    assert r.stdout.count("(simulated 0.14 s)") == 2 and "load_seconds=0.03" in r.stdout


def test_torchrun_form_and_context_parallel_size(tree, tmp_path):
    out = tmp_path / "cp"
    r = run(["torchrun", "--nproc_per_node=2", "--master_port=12341", "examples/inference.py",
             "-i", tree / "robot_example/edge/robot_edge_spec.json", "-o", out], tmp_path, prefix=[])
    assert r.returncode == 0, r.stderr
    assert sidecar(out)["context_parallel_size"] == 2 and (out / "robot_edge.mp4").is_file()


def test_rerun_into_the_same_folder_overwrites_the_logs(tree, tmp_path):
    out = tmp_path / "again"
    for _ in range(2):
        r = run(["-i", tree / "robot_example/edge/robot_edge_spec.json", "-o", out], tmp_path)
        assert r.returncode == 0, r.stderr
    assert (out / "console.log").read_text().count("Generating 1 samples") == 1


# --------------------------------------------------------------------------- validation


INVALID = [
    # (what, change to the sample, text on stderr)
    ("unknown top-level key", {"output_dir": "outputs/x"},
     "output_dir\n  Extra inputs are not permitted [type=extra_forbidden, input_value='outputs/x', input_type=str]"),
    ("sigma_max as a number", {"sigma_max": 80},
     "sigma_max\n  Input should be a valid string [type=string_type, input_value=80, input_type=int]\n"
     "    For further information visit https://errors.pydantic.dev/2.11/v/string_type"),
    ("fractional guidance", {"guidance": 7.5},
     "guidance\n  Input should be a valid integer, got a number with a fractional part [type=int_from_float"),
    ("guidance out of range", {"guidance": 9}, "guidance\n  Input should be less than or equal to 7"),
    ("missing input video", {"video_path": "no/such.mp4"},
     "video_path\n  Path does not point to a file [type=path_not_file, input_value='no/such.mp4', input_type=str]"),
    ("control weight above 1", {"edge": {"control_weight": 1.5}},
     "edge.control_weight\n  Input should be less than or equal to 1 [type=less_than_equal"),
    ("no control", {"edge": None}, "  Value error, No controls provided, please provide at least one control key"),
    ("wrong type of name", {"name": 7}, "name\n  Input should be a valid string [type=string_type, input_value=7"),
    ("bad preset", {"edge": {"preset_edge_threshold": "extreme"}},
     "edge.preset_edge_threshold\n  Input should be 'very_low', 'low', 'medium', 'high' or 'very_high'"),
]


@pytest.mark.parametrize("what, change, expected", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_samples_exit_1_with_pydantics_text_before_any_output(tree, tmp_path, what, change, expected):
    spec = write_spec(tmp_path / "spec.json", edge_sample(tree, **change))
    out = tmp_path / "out"
    r = run(["-i", spec, "-o", out], tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"Error validating parameters from '{spec}' at line 0\n" in r.stderr
    assert "validation error" in r.stderr and "for InferenceArguments" in r.stderr
    assert expected in r.stderr, r.stderr
    assert not out.exists(), "upstream validates every file before it makes the output folder"


def test_t1_style_input_control_is_silently_ignored_and_computed(tree, tmp_path):
    spec = write_spec(tmp_path / "spec.json", edge_sample(tree, edge={"input_control": "ignored.mp4"}))
    r = run(["-i", spec, "-o", tmp_path / "o"], tmp_path)
    assert r.returncode == 0, r.stderr
    control = sidecar(tmp_path / "o")["samples"]["robot_edge"]["controls"]["edge"]
    assert control["generated"] is True and control["control_path"] is None


def test_duplicate_names_across_files_exit_1(tree, tmp_path):
    a = write_spec(tmp_path / "a.json", edge_sample(tree))
    b = write_spec(tmp_path / "b.json", edge_sample(tree))
    r = run(["-i", a, b, "-o", tmp_path / "o"], tmp_path)
    assert r.returncode == 1 and r.stderr.strip() == "Error: Inference samplename robot_edge is not unique"
    assert not (tmp_path / "o").exists()


def test_a_blank_jsonl_line_crashes_before_the_model(tree, tmp_path):
    spec = tmp_path / "batch.jsonl"
    spec.write_text(json.dumps(edge_sample(tree)) + "\n\n")
    r = run(["-i", spec, "-o", tmp_path / "o"], tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == ("json.decoder.JSONDecodeError: "
                                                 "Expecting value: line 1 column 1 (char 0)")
    assert "Traceback (most recent call last)" in r.stderr and not (tmp_path / "o").exists()


def test_yaml_specs_are_refused(tree, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\n")
    r = run(["-i", spec, "-o", tmp_path / "o"], tmp_path)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == "ValueError: Unsupported file extension: .yaml"


def test_unknown_flag_is_a_tyro_error_exit_2(tree, tmp_path):
    r = run(["-i", tree / "robot_example/edge/robot_edge_spec.json", "-o", tmp_path / "o", "--num_gpus", "2"], tmp_path)
    assert r.returncode == 2 and "Unrecognized options: --num_gpus" in r.stderr


def test_cli_overrides_apply_to_every_sample(tree, tmp_path):
    r = run(["-i", tree / "seg.jsonl", "-o", tmp_path / "o", "--seed", "7", "--num-steps", "4", "--sigma-max", "80"],
            tmp_path)
    assert r.returncode == 0, r.stderr
    for name in ("robot_seg", "car_seg"):
        dumped = json.loads((tmp_path / "o" / f"{name}.json").read_text())
        assert (dumped["seed"], dumped["num_steps"], dumped["sigma_max"]) == (7, 4, "80")


# --------------------------------------------------------------------------- failures


def _three(tree, tmp_path, middle):
    lines = [edge_sample(tree, name="first"), edge_sample(tree, name="second", **middle),
             edge_sample(tree, name="third")]
    spec = tmp_path / "batch.jsonl"
    spec.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return spec


def test_guardrail_block_skips_the_sample_and_exits_0(tree, tmp_path):
    spec = _three(tree, tmp_path, {"prompt": "a robot EMULATOR_GUARDRAIL_BLOCK"})
    out = tmp_path / "o"
    r = run(["-i", spec, "-o", out], tmp_path)
    assert r.returncode == 0, r.stderr
    assert (out / "first.mp4").is_file() and (out / "third.mp4").is_file()
    assert (out / "second.json").is_file(), "written before the guardrail"
    assert not any(out.glob("second*.mp4")) and not (out / "second.txt").exists()
    console = (out / "console.log").read_text()
    assert "|CRITICAL|cosmos_transfer2/inference.py:217:_generate_sample] Guardrail blocked generation. Prompt: " \
           "a robot EMULATOR_GUARDRAIL_BLOCK" in console
    # the presets module's own line is filtered out of the console by upstream's "*._*" rule
    assert "GUARDRAIL BLOCKED" not in console and "GUARDRAIL BLOCKED: " in (out / "debug.log").read_text()
    assert sidecar(out)["samples"]["second"]["status"] == "blocked"
    assert "[cosmos-emulator] sample 2/3 second blocked by guardrail" in r.stdout


def test_guardrail_with_no_keep_going_raises_and_disabled_guardrails_block_nothing(tree, tmp_path):
    spec = _three(tree, tmp_path, {"prompt": "a robot EMULATOR_GUARDRAIL_BLOCK"})
    r = run(["-i", spec, "-o", tmp_path / "stop", "--no-keep-going"], tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == "Exception: Guardrail blocked generation. Prompt: a robot " \
                                                "EMULATOR_GUARDRAIL_BLOCK"
    assert not (tmp_path / "stop" / "third.json").exists()
    r = run(["-i", spec, "-o", tmp_path / "off", "--disable-guardrails"], tmp_path)
    assert r.returncode == 0 and (tmp_path / "off" / "second.mp4").is_file()


def test_an_error_mid_batch_aborts_the_rest(tree, tmp_path):
    # the control is 50 frames for a 100-frame input: chunk 2 (frames 92..) has nothing to read
    spec = _three(tree, tmp_path, {"edge": {"control_path": str(tree / "short_control.mp4")}})
    out = tmp_path / "o"
    r = run(["-i", spec, "-o", out], tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == \
        "ValueError: No input frames; cannot pad. Verify that video frame counts match."
    assert (out / "first.mp4").is_file()
    assert (out / "second.json").is_file() and not (out / "second.mp4").exists()
    assert not any(out.glob("third*")), "later samples never run"
    assert "[cosmos-emulator] sample 2/3 second chunk 1/2" in r.stdout and "second chunk 2/2" not in r.stdout


def test_out_of_memory_while_loading_the_multicontrol_model(tree, tmp_path):
    out = tmp_path / "o"
    r = run(["-i", tree / "robot_example/multicontrol/robot_multicontrol_spec.json", "-o", out], tmp_path,
            env=_env(COSMOS_EMULATOR_OOM_ABOVE_CONTROLS=2))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("torch.OutOfMemoryError: CUDA out of memory.")
    assert "4 control branches > COSMOS_EMULATOR_OOM_ABOVE_CONTROLS=2" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["console.log", "debug.log"], "no sample started"
