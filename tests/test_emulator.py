"""Tests of remote/cosmos_emulator.py (the CPU stand-in for Cosmos Transfer 1).

Real ffmpeg (imageio-ffmpeg), tiny videos, the emulator run as a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emulator_media import make_video, read_video

ROOT = Path(__file__).resolve().parents[1]
EMULATOR = ROOT / "remote" / "cosmos_emulator.py"
TRANSFER = "cosmos_transfer1/diffusion/inference/transfer.py"
UPSAMPLER = "cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py"
TORCHRUN = ["torchrun", "--nproc_per_node=1", "--nnodes=1", "--node_rank=0"]
COMMENT = "cosmos-emulator: CPU stand-in, not a model output"


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return {
        "wide": make_video(d / "wide.mp4", 64, 36, 8, 30),
        "portrait": make_video(d / "portrait.mp4", 48, 64, 8, 30),
        "wide12": make_video(d / "wide12.mp4", 64, 36, 12, 30),
        "depth6": make_video(d / "depth6.mp4", 64, 36, 6, 30, source="testsrc"),
        "seg": make_video(d / "seg.mp4", 64, 36, 10, 30, source="rgbtestsrc"),
    }


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COSMOS_EMULATOR_")
           and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(args, cwd, env=None):
    return subprocess.run(
        [sys.executable, str(EMULATOR)] + [str(a) for a in args],
        cwd=str(cwd), env=env or _env(), capture_output=True, text=True, encoding="utf-8", timeout=120,
    )


def write_spec(path, spec):
    Path(path).write_text(json.dumps(spec))
    return str(path)


def write_jsonl(path, lines, trailing_blank=False):
    text = "".join(json.dumps(x) + "\n" for x in lines)
    if trailing_blank:
        text += "\n"
    Path(path).write_text(text)
    return str(path)


def last_line(text):
    return [ln for ln in text.splitlines() if ln.strip()][-1]


# --------------------------------------------------------------------------- single mode


def test_single_mode_edge_layout_size_fps_frames(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {
        "prompt": "a robotic arm hands over a cup \u2014 caf\u00e9", "input_video_path": media["wide"],
        "edge": {"control_weight": 1.0},
    })
    out = tmp_path / "out"
    r = run([*TORCHRUN, TRANSFER, "--checkpoint_dir", "/ckpt", "--video_save_folder", out,
             "--controlnet_specs", spec, "--num_steps", 35, "--guidance", 7.0,
             "--seed", 1, "--fps", 24, "--num_gpus", 1], tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "edge_input_control_0.mp4", "emulator.json", "output.mp4", "output.txt"]
    v = read_video(out / "output.mp4")
    assert (v["width"], v["height"]) == (1280, 704)  # 16:9 bucket
    assert v["fps"] == 24  # from --fps, not the input's 30
    assert v["frames"] == 8
    assert v["codec"] == "h264"
    assert v["comment"] == COMMENT
    ctrl = read_video(out / "edge_input_control_0.mp4")
    assert (ctrl["width"], ctrl["height"], ctrl["frames"]) == (1280, 704, 8)
    assert ctrl["comment"] == COMMENT
    assert (out / "output.txt").read_bytes() == "a robotic arm hands over a cup \u2014 caf\u00e9".encode("utf-8")
    side = json.loads((out / "emulator.json").read_text())
    assert side["is_model_output"] is False and side["emulator"] == "cosmos-emulator"
    assert side["controls"]["edge"]["generated"] is True
    assert (side["width"], side["height"], side["frames"], side["fps"], side["chunks"]) == (1280, 704, 8, 24, 1)
    lines = r.stdout.splitlines()
    assert lines[0] == "[cosmos-emulator] CPU emulator of Cosmos Transfer 1 \u2014 outputs are NOT model outputs"
    assert "[cosmos-emulator] model loaded: controls=edge load_seconds=0.00" in lines
    assert "[cosmos-emulator] line 0/1 chunk 1/1" in lines
    assert f"[cosmos-emulator] line 0/1 done: {out / 'output.mp4'}" in lines
    assert sum(ln.endswith("] running preprocessor") for ln in lines) == 1
    assert any("|INFO|cosmos_transfer1/diffusion/inference/inference_utils.py:" in ln
               and ln.endswith("Making all control and input videos to be length of 8 frames.") for ln in lines)


def test_prompt_equals_form_loses_to_spec_but_space_form_wins(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"prompt": "SPEC PROMPT", "input_video_path": media["wide"],
                                                "vis": {"control_weight": 0.5}})
    env = _env(COSMOS_EMULATOR_VARIATION=0)
    r1 = run([TRANSFER, "--video_save_folder", tmp_path / "a", "--controlnet_specs", spec, "--prompt=CLI PROMPT"],
             tmp_path, env)
    r2 = run([TRANSFER, "--video_save_folder", tmp_path / "b", "--controlnet_specs", spec, "--prompt", "CLI PROMPT"],
             tmp_path, env)
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    assert (tmp_path / "a" / "output.txt").read_text() == "SPEC PROMPT"
    assert (tmp_path / "b" / "output.txt").read_text() == "CLI PROMPT"
    assert (tmp_path / "a" / "vis_input_control_0.mp4").exists()


def test_missing_control_weight_warns_and_uses_half(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"input_video_path": media["wide"], "depth": {}})
    r = run([TRANSFER, "--video_save_folder", tmp_path / "o", "--controlnet_specs", spec], tmp_path)
    assert r.returncode == 0, r.stderr
    assert any("|WARNING|" in ln and ln.endswith("No control weight specified for depth. Setting to 0.5.")
               for ln in r.stdout.splitlines())
    side = json.loads((tmp_path / "o" / "emulator.json").read_text())
    assert side["controls"]["depth"]["control_weight"] == "0.5"
    assert (tmp_path / "o" / "depth_input_control_0.mp4").exists()


# --------------------------------------------------------------------------- batch mode


def test_batch_of_three_with_overrides(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {
        "input_video_path": media["wide"], "edge": {"control_weight": 0.5}, "depth": {"control_weight": 0.5}})
    batch = write_jsonl(tmp_path / "b.jsonl", [
        {"visual_input": media["wide"], "prompt": "line zero"},
        {"visual_input": media["wide"], "prompt": "line one",
         "control_overrides": {"depth": {"input_control": media["depth6"]}, "seg": {"input_control": media["seg"]}}},
        {"visual_input": media["portrait"], "prompt": "line two",
         "control_overrides": {"edge": {"control_weight": 0.9}}},
    ])
    out = tmp_path / "out"
    r = run([*TORCHRUN, TRANSFER, "--video_save_folder", out, "--controlnet_specs", spec,
             "--batch_input_path", batch, "--fps", 30], tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["video_0", "video_1", "video_2"]
    for k, prompt in enumerate(["line zero", "line one", "line two"]):
        assert (out / f"video_{k}" / "prompt.txt").read_text() == prompt
        assert (out / f"video_{k}" / "emulator.json").exists()
    # the override gave line 1 a precomputed depth video: not regenerated, and it trims T to 6 frames
    assert not (out / "video_1" / "depth_input_control_0.mp4").exists()
    assert (out / "video_0" / "depth_input_control_0.mp4").exists()
    assert (out / "video_2" / "depth_input_control_0.mp4").exists()
    assert read_video(out / "video_1" / "output.mp4")["frames"] == 6
    assert read_video(out / "video_0" / "output.mp4")["frames"] == 8
    v2 = read_video(out / "video_2" / "output.mp4")
    assert (v2["width"], v2["height"]) == (704, 960)  # 48x64 -> 3:4 bucket
    assert "Ignoring unknown control key in override: seg" in r.stdout
    assert sum(ln.endswith("] running preprocessor") for ln in r.stdout.splitlines()) == 3
    assert json.loads((out / "video_2" / "emulator.json").read_text())["controls"]["edge"]["control_weight"] == 0.9
    for k in range(3):
        assert f"[cosmos-emulator] line {k}/3 chunk 1/1" in r.stdout.splitlines()


def test_batch_eleven_lines_unpadded_names(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"input_video_path": media["wide"], "edge": {"control_weight": 1}})
    batch = write_jsonl(tmp_path / "b.jsonl", [{"visual_input": media["wide"], "prompt": f"p{k}"} for k in range(11)])
    out = tmp_path / "out"
    r = run([TRANSFER, "--video_save_folder", out, "--controlnet_specs", spec, "--batch_input_path", batch],
            tmp_path, _env(COSMOS_EMULATOR_VARIATION=0))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"video_{k}" for k in range(11))
    assert (out / "video_10" / "output.mp4").exists() and (out / "video_10" / "prompt.txt").read_text() == "p10"


def test_variation_knob(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"input_video_path": media["wide"], "edge": {"control_weight": 1}})
    batch = write_jsonl(tmp_path / "b.jsonl", [{"visual_input": media["wide"], "prompt": f"p{k}"} for k in range(2)])
    for var in (0, 1):
        out = tmp_path / f"out{var}"
        r = run([TRANSFER, "--video_save_folder", out, "--controlnet_specs", spec, "--batch_input_path", batch],
                tmp_path, _env(COSMOS_EMULATOR_VARIATION=var))
        assert r.returncode == 0, r.stderr
        same = (out / "video_0" / "output.mp4").read_bytes() == (out / "video_1" / "output.mp4").read_bytes()
        assert same is (var == 0)


def test_blank_jsonl_line_fails(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"input_video_path": media["wide"], "edge": {"control_weight": 1}})
    batch = write_jsonl(tmp_path / "b.jsonl", [{"visual_input": media["wide"], "prompt": "p"}], trailing_blank=True)
    r = run([TRANSFER, "--video_save_folder", tmp_path / "o", "--controlnet_specs", spec,
             "--batch_input_path", batch], tmp_path)
    assert r.returncode == 1
    assert "Traceback (most recent call last):" in r.stderr
    assert last_line(r.stderr) == "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)"
    assert "running preprocessor" not in r.stdout


def test_precomputed_depth_and_seg_not_regenerated(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {
        "prompt": "p", "input_video_path": media["wide12"],
        "depth": {"input_control": media["depth6"], "control_weight": 0.5},
        "seg": {"input_control": media["seg"], "control_weight": 0.5},
    })
    out = tmp_path / "o"
    r = run([TRANSFER, "--video_save_folder", out, "--controlnet_specs", spec], tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["emulator.json", "output.mp4", "output.txt"]
    assert "Making all control and input videos to be length of 6 frames." in r.stdout
    assert f"reading control input {media['depth6']} for hint depth" in r.stdout
    assert read_video(out / "output.mp4")["frames"] == 6


def test_two_gpus_write_one_control_copy_per_rank(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"prompt": "p", "input_video_path": media["wide"],
                                                "edge": {"control_weight": 1}, "keypoint": {"control_weight": 0.3}})
    out = tmp_path / "o"
    r = run(["torchrun", "--nproc_per_node", "2", "--nnodes=1", TRANSFER, "--video_save_folder", out,
             "--controlnet_specs", spec, "--num_gpus", 2], tmp_path)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in out.iterdir())
    for hint in ("edge", "keypoint"):
        assert f"{hint}_input_control_0.mp4" in names and f"{hint}_input_control_1.mp4" in names
    assert "output.mp4" in names


def test_num_gpus_must_match_nproc(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"input_video_path": media["wide"], "edge": {"control_weight": 1}})
    r = run([*TORCHRUN, TRANSFER, "--video_save_folder", tmp_path / "o", "--controlnet_specs", spec,
             "--num_gpus", 2], tmp_path)
    assert r.returncode == 1
    assert "--num_gpus 2 must equal torchrun --nproc_per_node = 1" in r.stderr
    assert not (tmp_path / "o" / "output.mp4").exists()


def test_upscale_is_3x_bucket_and_forces_batch_size_1(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"input_video_path": media["wide"], "upscale": {"control_weight": 0.5}})
    batch = write_jsonl(tmp_path / "b.jsonl", [{"visual_input": media["wide"], "prompt": f"p{k}"} for k in range(2)])
    out = tmp_path / "o"
    r = run([*TORCHRUN, TRANSFER, "--video_save_folder", out, "--controlnet_specs", spec, "--batch_input_path",
             batch, "--batch_size", 2, "--num_steps", 10], tmp_path, _env(COSMOS_EMULATOR_VARIATION=0))
    assert r.returncode == 0, r.stderr
    assert "Setting batch_size=1 as upscale does not support batch generation" in r.stdout
    assert r.stdout.count("Running batch generation with batch_size=1") == 2
    v = read_video(out / "video_1" / "output.mp4")
    assert (v["width"], v["height"], v["frames"]) == (3840, 2112, 8)
    assert sorted(p.name for p in (out / "video_0").iterdir()) == ["emulator.json", "output.mp4", "prompt.txt"]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("case", ["no_input_sigma", "no_input_control", "negative_weight", "bad_weight",
                                  "invalid_hint", "missing_file"])
def test_validation_errors(tmp_path, media, case):
    specs = {
        "no_input_sigma": ({"edge": {"control_weight": 1}},
                           "ValueError: Must have 'input_video' specified if sigma_max < 80"),
        "no_input_control": ({"sigma_max": 90, "edge": {"control_weight": 1}},
                             "ValueError: edge controlnet must have 'input_control' video specified if no "
                             "'input_video' specified."),
        "negative_weight": ({"input_video_path": media["wide"], "edge": {"control_weight": -1}},
                            "ValueError: Control weight for edge must be a valid non-negative float or a path "
                            "to a .pt file."),
        "bad_weight": ({"input_video_path": media["wide"], "vis": {"control_weight": "abc"}},
                       "ValueError: Control weight for vis must be a valid non-negative float or a path to a "
                       ".pt file."),
        "invalid_hint": ({"input_video_path": media["wide"], "canny": {"control_weight": 1}},
                         "ValueError: Invalid hint_key: canny. Must be one of "),
        "missing_file": ({"input_video_path": str(tmp_path / "nope.mp4"), "edge": {"control_weight": 1}},
                         f"FileNotFoundError: [Errno 2] No such file or directory: '{tmp_path / 'nope.mp4'}'"),
    }
    spec, expected = specs[case]
    path = write_spec(tmp_path / "spec.json", spec)
    r = run([*TORCHRUN, TRANSFER, "--video_save_folder", tmp_path / "o", "--controlnet_specs", path], tmp_path)
    assert r.returncode == 1, r.stdout
    assert "Traceback (most recent call last):" in r.stderr
    tb = r.stderr.split("torch.distributed.elastic.multiprocessing.errors.ChildFailedError")[0]
    assert last_line(tb.rsplit("\nE", 1)[0]).startswith(expected)
    assert not (tmp_path / "o" / "output.mp4").exists()


def test_argparse_errors_exit_2(tmp_path, media):
    r = run([TRANSFER, "--video_save_folder", tmp_path / "o"], tmp_path)
    assert r.returncode == 2
    assert "the following arguments are required: --controlnet_specs" in r.stderr
    spec = write_spec(tmp_path / "spec.json", {"input_video_path": media["wide"], "edge": {"control_weight": 1}})
    r = run([TRANSFER, "--controlnet_specs", spec, "--blur_strength", "extreme"], tmp_path)
    assert r.returncode == 2 and "invalid choice: 'extreme'" in r.stderr


def test_no_ffmpeg_is_a_one_line_error(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"input_video_path": media["wide"], "edge": {"control_weight": 1}})
    r = run([TRANSFER, "--controlnet_specs", spec, "--video_save_folder", tmp_path / "o"], tmp_path,
            _env(COSMOS_EMULATOR_FFMPEG=str(tmp_path / "no-ffmpeg")))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("cosmos-emulator: error: COSMOS_EMULATOR_FFMPEG=")


def test_oom_knob(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"prompt": "p", "input_video_path": media["wide"],
                                                "edge": {"control_weight": 0.5}, "vis": {"control_weight": 0.5}})
    r = run([*TORCHRUN, TRANSFER, "--video_save_folder", tmp_path / "o", "--controlnet_specs", spec], tmp_path,
            _env(COSMOS_EMULATOR_OOM_ABOVE_CONTROLS=1))
    assert r.returncode == 1
    assert "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate" in r.stderr
    assert "running preprocessor" not in r.stdout and "model loaded" not in r.stdout
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    # at the limit it runs
    r = run([TRANSFER, "--video_save_folder", tmp_path / "o2", "--controlnet_specs", spec], tmp_path,
            _env(COSMOS_EMULATOR_OOM_ABOVE_CONTROLS=2))
    assert r.returncode == 0, r.stderr


def test_guardrail_line_1_of_3_crashes_run(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"input_video_path": media["wide"], "edge": {"control_weight": 1}})
    batch = write_jsonl(tmp_path / "b.jsonl", [{"visual_input": media["wide"], "prompt": f"p{k}"} for k in range(3)])
    out = tmp_path / "o"
    r = run([*TORCHRUN, TRANSFER, "--video_save_folder", out, "--controlnet_specs", spec,
             "--batch_input_path", batch], tmp_path, _env(COSMOS_EMULATOR_GUARDRAIL_LINES="1"))
    assert r.returncode == 1
    assert (out / "video_0" / "output.mp4").exists()
    assert (out / "video_1").is_dir() and (out / "video_1" / "edge_input_control_0.mp4").exists()
    assert not (out / "video_1" / "output.mp4").exists()
    assert not (out / "video_2").exists()
    assert any("|CRITICAL|" in ln and ln.endswith("] Guardrail blocked generation for entire batch.")
               for ln in r.stdout.splitlines())
    assert "[cosmos-emulator] line 1/3 blocked by guardrail" in r.stdout
    assert "TypeError: cannot unpack non-iterable NoneType object" in r.stderr


def test_guardrail_block_word_single_mode(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"input_video_path": media["wide"], "edge": {"control_weight": 1},
                                                "prompt": "a scene with EMULATOR_GUARDRAIL_BLOCK inside"})
    r = run([TRANSFER, "--video_save_folder", tmp_path / "o", "--controlnet_specs", spec], tmp_path)
    assert r.returncode == 1 and "TypeError: cannot unpack non-iterable NoneType object" in r.stderr
    assert (tmp_path / "o" / "edge_input_control_0.mp4").exists() and not (tmp_path / "o" / "output.mp4").exists()


# --------------------------------------------------------------------------- knobs and upsampler


def test_timing_knobs_take_at_least_the_configured_time(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"prompt": "p", "input_video_path": media["wide"],
                                                "edge": {"control_weight": 0.5}, "vis": {"control_weight": 0.5}})
    env = _env(COSMOS_EMULATOR_LOAD_SECONDS=0.3, COSMOS_EMULATOR_LOAD_SECONDS_PER_CONTROL=0.2,
               COSMOS_EMULATOR_SECONDS_PER_CHUNK=0.2)
    t0 = time.time()
    r = run([TRANSFER, "--video_save_folder", tmp_path / "o", "--controlnet_specs", spec, "--num_steps", 70], tmp_path,
            env)
    elapsed = time.time() - t0
    assert r.returncode == 0, r.stderr
    # load 0.3 + 2 x 0.2, one chunk: 0.2 x (70/35) x 2 controls = 0.8  -> >= 1.5 s
    assert elapsed >= 1.5
    assert "[cosmos-emulator] model loaded: controls=edge,vis load_seconds=0.70" in r.stdout
    assert "line 0/1 chunk 1/1 (simulated 0.80 s)" in r.stdout


def test_control_factor_gives_the_cost_model_shape(tmp_path, media):
    """With COSMOS_EMULATOR_CONTROL_FACTOR=f a chunk costs S x steps/35 x (1 + f x (controls - 1))."""
    spec = write_spec(tmp_path / "spec.json", {"prompt": "p", "input_video_path": media["wide"],
                                                "edge": {"control_weight": 0.4}, "vis": {"control_weight": 0.3},
                                                "depth": {"control_weight": 0.3}})
    env = _env(COSMOS_EMULATOR_SECONDS_PER_CHUNK=0.1, COSMOS_EMULATOR_CONTROL_FACTOR=0.5)
    r = run([TRANSFER, "--video_save_folder", tmp_path / "o", "--controlnet_specs", spec], tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert "chunk 1/1 (simulated 0.20 s)" in r.stdout  # 0.1 x 1 x (1 + 0.5 x 2)
    bad = run([TRANSFER, "--video_save_folder", tmp_path / "p", "--controlnet_specs", spec], tmp_path,
              _env(COSMOS_EMULATOR_CONTROL_FACTOR="-1"))
    assert bad.returncode != 0 and "COSMOS_EMULATOR_CONTROL_FACTOR" in bad.stderr


def test_upsampler_needs_rank(tmp_path, media):
    r = run([UPSAMPLER, "--prompt", "a robot", "--input_video", media["wide"]], tmp_path)
    assert r.returncode == 1
    assert last_line(r.stderr) == "KeyError: 'RANK'"
    assert r.stdout == ""
    r = run(["torchrun", "--nproc_per_node=1", UPSAMPLER, "--prompt", "a robot", "--input_video", media["wide"]],
            tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Upsampled prompt: a robot.")
    assert lines[0].endswith(" (cosmos-emulator)")
    r2 = run([UPSAMPLER, "--input_video", media["wide"]], tmp_path, _env(RANK=0))
    assert r2.returncode == 0 and r2.stdout.startswith("Upsampled prompt: ") and "describe" not in r2.stdout
    assert run(["torchrun", "--nproc_per_node=1", UPSAMPLER, "--prompt", "a robot", "--input_video", media["wide"]],
               tmp_path).stdout == r.stdout  # deterministic


def test_transfer_upsample_prompt(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"prompt": "a cup on a desk", "input_video_path": media["wide"],
                                                "edge": {"control_weight": 1}})
    out = tmp_path / "o"
    r = run([*TORCHRUN, TRANSFER, "--video_save_folder", out, "--controlnet_specs", spec, "--upsample_prompt",
             "--offload_prompt_upsampler"], tmp_path)
    assert r.returncode == 0, r.stderr
    text = (out / "output.txt").read_text()
    assert text.startswith("a cup on a desk.") and text.endswith(" (cosmos-emulator)")
    assert (out / "video_0" / "control_input_edge_upsampler.mp4").exists()
    r = run([TRANSFER, "--video_save_folder", tmp_path / "o2", "--controlnet_specs", spec, "--upsample_prompt"],
            tmp_path)
    assert r.returncode == 1 and last_line(r.stderr) == "KeyError: 'RANK'"


def test_speed_100_lines(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {"input_video_path": media["wide"], "edge": {"control_weight": 1}})
    batch = write_jsonl(tmp_path / "b.jsonl",
                        [{"visual_input": media["wide"], "prompt": f"prompt {k}"} for k in range(100)])
    out = tmp_path / "o"
    t0 = time.time()
    r = run([*TORCHRUN, TRANSFER, "--video_save_folder", out, "--controlnet_specs", spec,
             "--batch_input_path", batch], tmp_path, _env(COSMOS_EMULATOR_VARIATION=0))
    elapsed = time.time() - t0
    print(f"\n100-line batch (VARIATION=0, 64x36x8 input, edge): {elapsed:.2f}s")
    assert r.returncode == 0, r.stderr
    assert "[cosmos-emulator] finished: lines=100 outputs=100" in r.stdout
    for k in (0, 57, 99):
        assert (out / f"video_{k}" / "prompt.txt").read_text() == f"prompt {k}"
        assert (out / f"video_{k}" / "output.mp4").stat().st_size > 0
        assert (out / f"video_{k}" / "edge_input_control_0.mp4").exists()
    assert len(list(out.glob("video_*/output.mp4"))) == 100


def test_drawbox_label_and_regional_prompts_warning(tmp_path, media):
    spec = write_spec(tmp_path / "spec.json", {
        "prompt": "p", "input_video_path": media["portrait"], "seg": {"control_weight": 0.7},
        "regional_prompts": [{"prompt": "a red car", "region_definitions_path": [0, 0, 0.5, 0.5]}]})
    out = tmp_path / "o"
    r = run([TRANSFER, "--video_save_folder", out, "--controlnet_specs", spec, "--video_save_name", "clip"],
            tmp_path, _env(COSMOS_EMULATOR_LABEL="drawbox"))
    assert r.returncode == 0, r.stderr
    assert "[cosmos-emulator] WARNING: regional_prompts are ignored by the emulator" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4", "clip.txt", "emulator.json", "seg_input_control_0.mp4"]
    v = read_video(out / "clip.mp4")
    assert (v["width"], v["height"], v["comment"]) == (704, 960, COMMENT)
