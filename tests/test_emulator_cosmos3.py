"""The emulator as Cosmos 3 transfer (python -m cosmos_framework.scripts.inference), on the cookbook's own specs.

Real processes, real ffmpeg (imageio-ffmpeg), small control videos made where the specs expect
them; the specs and prompts are upstream's, unchanged (tests/contract_examples/cosmos3/SOURCES.md).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emulator_media import make_video, read_video

ROOT = Path(__file__).resolve().parents[1]
EMULATOR = ROOT / "remote" / "cosmos_emulator.py"
EXAMPLES = ROOT / "tests" / "contract_examples" / "cosmos3"
MODULE = ["python", "-m", "cosmos_framework.scripts.inference"]
LATENCY = ["--parallelism-preset=latency"]
COMMENT = "cosmos-emulator: CPU stand-in, not a model output"
BANNER = "[cosmos-emulator] CPU emulator of Cosmos 3 (transfer) \u2014 outputs are NOT model outputs"
HINTS = ["blur", "depth", "edge", "seg", "wsm"]


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("COSMOS_") and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
                                                        "MASTER_ADDR", "MASTER_PORT")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(args, cwd, env=None, prefix=MODULE):
    return subprocess.run([sys.executable, str(EMULATOR), *prefix, *[str(a) for a in args]], cwd=str(cwd),
                          env=env or _env(), capture_output=True, text=True,
                          encoding="utf-8", timeout=300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The cookbook's transfer folder: specs/, assets/ (prompts), and small control videos in place."""
    root = tmp_path_factory.mktemp("cookbook") / "transfer"
    shutil.copytree(EXAMPLES, root)
    for hint in ("edge", "depth", "seg"):
        make_video(root / f"assets/{hint}/control_{hint}.mp4", 64, 36, 33, 30, source="testsrc")
    make_video(root / "assets/blur/control_blur.mp4", 48, 36, 33, 30, source="testsrc")  # 4:3, as blur.json says
    make_video(root / "assets/wsm/control_wsm.mp4", 64, 36, 21, 10, source="testsrc")
    make_video(root / "assets/source.mp4", 64, 36, 33, 24)
    make_video(root / "assets/short.mp4", 64, 36, 5, 24, source="rgbtestsrc")
    return root


def write_spec(path, spec):
    Path(path).write_text(json.dumps(spec))
    return Path(path)


def outputs(folder):
    return json.loads((folder / "sample_outputs.json").read_text())


def sample_args(folder):
    return json.loads((folder / "sample_args.json").read_text())


# --------------------------------------------------------------------------- the cookbook specs


def test_every_cookbook_spec_in_one_process(tree, tmp_path):
    out = tmp_path / "out"
    # a quoted glob, as upstream takes it; --resolution overrides every sample (keeps the encodes small)
    r = run([*LATENCY, "-i", str(tree / "specs") + "/*.json", "-o", out, "--checkpoint-path", "Cosmos3-Nano",
             "--resolution=256"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == BANNER
    assert sorted(p.name for p in out.iterdir()) == ["console.log", "debug.log"] + [f"transfer_{h}" for h in HINTS]
    done = [ln.split()[3] for ln in r.stdout.splitlines()
            if ln.startswith("[cosmos-emulator] sample ") and " done: " in ln]
    assert done == [f"transfer_{h}" for h in HINTS], "samples run in sorted file order"
    for hint in HINTS:
        folder = out / f"transfer_{hint}"
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            ["control_" + hint + ".mp4", "emulator.json", "sample_args.json", "sample_outputs.json", "vision.mp4"])
        result = outputs(folder)
        assert (result["status"], result["message"], result["stack_trace"]) == ("success", None, None)
        assert result["outputs"] == [{"content": {}, "files": [str(folder / "vision.mp4"),
                                                               str(folder / f"control_{hint}.mp4")]}]
        assert result["args"]["name"] == f"transfer_{hint}"
        args = sample_args(folder)
        assert args == result["args"]
        assert (args["num_steps"], args["seed"], args["resolution"]) == (50, 2026, "256")
        assert args["negative_metadata_mode"] == "none" and args["negative_prompt_keep_metadata"] is False
        assert args[hint]["weight"] == 1.0
        vision = read_video(folder / "vision.mp4")
        control = read_video(folder / f"control_{hint}.mp4")
        assert vision["comment"] == COMMENT and control["comment"] == COMMENT
        assert (vision["width"], vision["height"]) == ((320, 256) if hint == "blur" else (320, 192))
        assert vision["frames"] == control["frames"] == (21 if hint == "wsm" else 33)  # the control's length
        assert vision["fps"] == (10 if hint == "wsm" else 30)  # no vision_path: the spec's fps
        side = json.loads((folder / "emulator.json").read_text())
        assert side["is_model_output"] is False and side["controls"][hint]["generated"] is False
    seg, wsm = sample_args(out / "transfer_seg"), sample_args(out / "transfer_wsm")
    assert (seg["guidance"], seg["control_guidance"]) == (3.0, 2.0)
    assert (wsm["guidance"], wsm["control_guidance"], wsm["fps"], wsm["num_video_frames_per_chunk"]) == (1.0, 3.0, 10,
                                                                                                        101)
    console = (out / "console.log").read_text()
    assert console.splitlines()[0] == BANNER
    assert "|job=|INFO|cosmos_framework/scripts/inference.py:46:inference] Loaded 5 samples" in console
    assert f"[RANK 0] Saved transfer outputs to '{out}/transfer_edge/sample_outputs.json'" in console
    assert "Follow the edge control video precisely" in console  # emphasize_control_in_prompt defaults to true


def test_defaults_fill_only_what_the_sample_left_unset(tree, tmp_path):
    control = str(tree / "assets/depth/control_depth.mp4")
    write_spec(tmp_path / "one.json", {"name": "one", "prompt": "a street", "depth": {"control_path": control}})
    write_spec(tmp_path / "two.json", {"name": "two", "prompt": "a street", "guidance": 5.0,
                                       "depth": {"control_path": control, "weight": 3},
                                       "edge": {"control_path": control, "weight": 1}})
    out = tmp_path / "o"
    r = run([*LATENCY, "-i", tmp_path / "one.json", tmp_path / "two.json", "-o", out, "--resolution", "256"], tmp_path)
    assert r.returncode == 0, r.stderr
    one, two = sample_args(out / "one"), sample_args(out / "two")
    # one hint: the tuned transfer defaults; the rest from video2video's defaults file
    assert (one["guidance"], one["control_guidance"], one["shift"], one["num_steps"]) == (3.0, 1.5, 10.0, 35)
    assert (one["num_video_frames_per_chunk"], one["num_conditional_frames"], one["max_frames"]) == (93, 1, 5000)
    assert one["negative_metadata_mode"] == "same", "negative_prompt_keep_metadata defaults to true and promotes it"
    rng = random.Random(0)
    assert one["seed"] == rng.randint(0, 10000) and two["seed"] == rng.randint(0, 10000)
    # two hints: no tuned defaults (guidance the sample's own, control_guidance off)
    assert (two["guidance"], two["control_guidance"]) == (5.0, 1.0)
    side = json.loads((out / "two" / "emulator.json").read_text())
    assert {h: c["effective_weight"] for h, c in side["controls"].items()} == {"edge": 0.25, "depth": 0.75}
    assert "Follow the edge, depth control video precisely" in (out / "console.log").read_text()


def test_multi_control_on_the_fly_from_a_source_video(tree, tmp_path):
    spec = json.loads((tree / "specs/edge.json").read_text())
    spec.pop("edge")
    spec.update({"name": "transfer_multi_control", "prompt_path": "../assets/edge/prompt.json",
                 "vision_path": "../assets/source.mp4", "emphasize_control_in_prompt": False,
                 "edge": {"weight": 0.5, "preset_edge_threshold": "medium"},
                 "blur": {"weight": 0.5, "preset_blur_strength": "medium"}})
    (tree / "extra").mkdir(exist_ok=True)  # beside specs/, so "../assets" resolves and specs/*.json stays upstream's
    path = write_spec(tree / "extra" / "multi_control.json", spec)
    out = tmp_path / "o"
    r = run([*LATENCY, "-i", path, "-o", out, "--resolution=256"], tmp_path)
    assert r.returncode == 0, r.stderr
    folder = out / "transfer_multi_control"
    assert (folder / "control_edge.mp4").is_file() and (folder / "control_blur.mp4").is_file()
    assert [Path(f).name for f in outputs(folder)["outputs"][0]["files"]] == ["vision.mp4", "control_edge.mp4",
                                                                              "control_blur.mp4"]
    assert read_video(folder / "vision.mp4")["fps"] == 24, "with a vision_path, its fps (not the spec's 30)"
    console = (out / "console.log").read_text()
    assert "Computing edge control input on the fly" in console and "Computing blur control input on the fly" in console
    assert "Follow the" not in console


def test_chunks_follow_the_4k_plus_1_rule(tree, tmp_path):
    write_spec(tmp_path / "c.json", {"name": "c", "prompt": "x", "num_video_frames_per_chunk": 7,
                                     "edge": {"control_path": str(tree / "assets/edge/control_edge.mp4")}})
    r = run([*LATENCY, "-i", tmp_path / "c.json", "-o", tmp_path / "o", "--resolution=256"], tmp_path)
    assert r.returncode == 0, r.stderr
    side = json.loads((tmp_path / "o" / "c" / "emulator.json").read_text())
    # chunk 7 -> 9 frames; 33 frames with overlap 1: 1 + ceil((33-9)/8) = 4
    assert (side["chunk_frames"], side["chunks"]) == (9, 4)
    assert "[cosmos-emulator] sample 1/1 c chunk 4/4" in r.stdout


def test_blank_jsonl_lines_are_skipped_and_names_default_to_stem_and_line(tree, tmp_path):
    control = str(tree / "assets/edge/control_edge.mp4")
    line = json.dumps({"prompt": "x", "edge": {"control_path": control}})
    (tmp_path / "batch.jsonl").write_text(f"{line}\n\n{line}\n")
    r = run([*LATENCY, "-i", tmp_path / "batch.jsonl", "-o", tmp_path / "o", "--resolution=256"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir() if p.is_dir()) == ["batch_0", "batch_1"]


def test_rerun_overwrites_the_logs(tree, tmp_path):
    for _ in range(2):
        r = run([*LATENCY, "-i", tree / "specs/edge.json", "-o", tmp_path / "o", "--resolution=256"], tmp_path)
        assert r.returncode == 0, r.stderr
    assert (tmp_path / "o" / "console.log").read_text().count("Loaded 1 samples") == 1


def test_super_through_torchrun_with_a_master_port(tree, tmp_path):
    r = run(["torchrun", "--nproc-per-node=4", "--master-addr=127.0.0.1", "--master-port=29511",
             "-m", "cosmos_framework.scripts.inference", *LATENCY, "-i", tree / "specs/depth.json",
             "-o", tmp_path / "o", "--checkpoint-path", "Cosmos3-Super", "--resolution=256"], tmp_path, prefix=[])
    assert r.returncode == 0, r.stderr
    assert outputs(tmp_path / "o" / "transfer_depth")["status"] == "success"
    assert "checkpoint=Cosmos3-Super" in r.stdout


# --------------------------------------------------------------------------- validation


def _edge(tree, **changes):
    spec = {"name": "e", "prompt": "a street", "edge": {"control_path": str(tree / "assets/edge/control_edge.mp4")}}
    spec.update(changes)
    return spec


INVALID = [
    ("T2.5 control_weight", {"edge": {"control_path": "x", "control_weight": 1.0}},
     "edge.control_weight\n  Extra inputs are not permitted [type=extra_forbidden"),
    ("T1 input_control", {"edge": {"input_control": "x.mp4"}}, "edge.input_control\n  Extra inputs are not permitted"),
    ("T2.5 video_path", {"video_path": "x.mp4"}, "video_path\n  Extra inputs are not permitted"),
    ("guidance above 7", {"guidance": 8}, "guidance\n  Input should be less than or equal to 7 [type=less_than_equal"),
    ("control_guidance above 10", {"control_guidance": 11},
     "control_guidance\n  Input should be less than or equal to 10"),
    ("missing control file", {"edge": {"control_path": "nope.mp4"}},
     "edge.control_path\n  Value error, Path does not point to a file: nope.mp4 [type=value_error"),
    ("bad resolution", {"resolution": "1080"}, "resolution\n  Input should be '256', '480', '704', '720' or '768'"),
    ("bad blur preset", {"blur": {"preset_blur_strength": "max"}},
     "blur.preset_blur_strength\n  Input should be 'none'"),
    ("transfer field without a hint", {"edge": None, "num_conditional_frames": 1},
     "Value error, transfer inference requires at least one control hint (edge, blur, depth, seg, wsm)"),
]


@pytest.mark.parametrize("what, change, expected", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_samples_raise_before_the_model_with_pydantics_text(tree, tmp_path, what, change, expected):
    spec = write_spec(tmp_path / "spec.json", _edge(tree, **change))
    out = tmp_path / "o"
    r = run([*LATENCY, "-i", spec, "-o", out], tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"ValueError: Error validating parameters from '{spec}' at sample 0\nParameters: " in r.stderr
    assert "for OmniSampleOverrides" in r.stderr and expected in r.stderr, r.stderr
    # the logs come first upstream: a failed rerun still overwrites them
    assert sorted(p.name for p in out.iterdir()) == ["console.log", "debug.log"]


def test_duplicate_names_raise(tree, tmp_path):
    a = write_spec(tmp_path / "a.json", _edge(tree))
    b = write_spec(tmp_path / "b.json", _edge(tree))
    r = run([*LATENCY, "-i", a, b, "-o", tmp_path / "o"], tmp_path)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == "ValueError: Duplicate name: 'e'"


def test_a_hint_without_any_source_fails_after_the_model_loads(tree, tmp_path):
    write_spec(tmp_path / "a.json", _edge(tree, name="a"))
    write_spec(tmp_path / "b.json", {"name": "b", "prompt": "x", "depth": {}})
    r = run([*LATENCY, "-i", tmp_path / "a.json", tmp_path / "b.json", "-o", tmp_path / "o"], tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == ("ValueError: transfer inference requires 'vision_path' or a "
                                                 "pre-computed 'control_path' (hint: depth)")
    assert "model loaded" in r.stdout and not (tmp_path / "o" / "a").exists(), "every sample is built before any runs"
    r = run([*LATENCY, "-i", tmp_path / "a.json", tmp_path / "b.json", "-o", tmp_path / "s", "--skip-invalid-samples",
             "--resolution=256"], tmp_path)
    assert r.returncode == 0, r.stderr
    skipped = outputs(tmp_path / "s" / "b")
    assert skipped["status"] == "skip" and skipped["message"].startswith("Skipping sample 'b': transfer inference")
    assert outputs(tmp_path / "s" / "a")["status"] == "success"


# --------------------------------------------------------------------------- failures


def _three(tree, tmp_path, middle):
    for name in ("a", "c"):
        write_spec(tmp_path / f"{name}.json", _edge(tree, name=name))
    write_spec(tmp_path / "b.json", middle)
    return [tmp_path / f"{n}.json" for n in "abc"]


def test_a_generation_error_aborts_the_rest_even_with_keep_going(tree, tmp_path):
    # depth is never computed on the fly: with only a vision_path it fails at generation time
    specs = _three(tree, tmp_path, {"name": "b", "prompt": "x", "vision_path": str(tree / "assets/source.mp4"),
                                    "depth": {}})
    out = tmp_path / "o"
    r = run([*LATENCY, "-i", *specs, "-o", out, "--keep-going", "--resolution=256"], tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == ("FileNotFoundError: Missing pre-computed control input for 'depth'. "
                                                 "Provide a control_path in the transfer config.")
    assert outputs(out / "a")["status"] == "success"
    assert (out / "b" / "sample_args.json").is_file() and not (out / "b" / "sample_outputs.json").exists()
    assert not (out / "c").exists(), "later samples never run"


def test_weights_must_be_non_negative(tree, tmp_path):
    control = str(tree / "assets/edge/control_edge.mp4")
    spec = write_spec(tmp_path / "w.json", {"name": "w", "prompt": "x", "edge": {"control_path": control, "weight": -1},
                                            "depth": {"control_path": control, "weight": 2}})
    r = run([*LATENCY, "-i", spec, "-o", tmp_path / "o", "--resolution=256"], tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == ("AssertionError: control_weights must all be non-negative, "
                                                 "got [-1.0, 2.0]")


def test_a_short_second_control_fails_on_an_empty_chunk(tree, tmp_path):
    spec = write_spec(tmp_path / "s.json", {
        "name": "s", "prompt": "x", "num_video_frames_per_chunk": 9,
        "edge": {"control_path": str(tree / "assets/edge/control_edge.mp4")},
        "depth": {"control_path": str(tree / "assets/short.mp4")}})
    r = run([*LATENCY, "-i", spec, "-o", tmp_path / "o", "--resolution=256"], tmp_path)
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == "RuntimeError: Cannot pad an empty frame tensor"


def test_out_of_memory_above_n_controls_aborts_at_generation(tree, tmp_path):
    control = str(tree / "assets/edge/control_edge.mp4")
    spec = write_spec(tmp_path / "m.json", {"name": "m", "prompt": "x", "edge": {"control_path": control},
                                            "depth": {"control_path": control}})
    r = run([*LATENCY, "-i", spec, "-o", tmp_path / "o"], tmp_path, env=_env(COSMOS_EMULATOR_OOM_ABOVE_CONTROLS=1))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("torch.OutOfMemoryError: CUDA out of memory.")
    assert (tmp_path / "o" / "m" / "sample_args.json").is_file()
    assert not (tmp_path / "o" / "m" / "sample_outputs.json").exists()


def test_throughput_preset_is_refused_for_transfer_on_several_ranks(tree, tmp_path):
    r = run(["torchrun", "--nproc-per-node=2", "-m", "cosmos_framework.scripts.inference",
             "--parallelism-preset=throughput", "-i", tree / "specs/edge.json", "-o", tmp_path / "o"],
            tmp_path, prefix=[])
    assert r.returncode == 1
    assert "RuntimeError: [cosmos-emulator] transfer under --parallelism-preset=throughput deadlocks" in r.stderr
    assert "REFUSED: --parallelism-preset=throughput" in r.stdout
    assert "ChildFailedError" in r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["console.log", "debug.log"]


def test_no_guardrail_on_the_transfer_path(tree, tmp_path):
    spec = write_spec(tmp_path / "g.json", _edge(tree, prompt="a street EMULATOR_GUARDRAIL_BLOCK"))
    r = run([*LATENCY, "-i", spec, "-o", tmp_path / "o", "--resolution=256"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert outputs(tmp_path / "o" / "e")["status"] == "success"
    assert "Cosmos 3 runs no guardrail on the transfer path" in r.stdout


def test_non_transfer_samples_are_not_emulated(tree, tmp_path):
    spec = write_spec(tmp_path / "t2v.json", {"name": "t", "model_mode": "text2video", "prompt": "x"})
    r = run([*LATENCY, "-i", spec, "-o", tmp_path / "o"], tmp_path)
    assert r.returncode == 2 and "is not emulated, only transfer" in r.stderr
