"""The emulator's decisions as tables (argv -> model, chunk counts, sleep times, log routing, pydantic's
error text) and the one-file bundle a host receives (deterministic, runnable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "remote"))

from emulator import modellog, timing  # noqa: E402
from emulator import validation as v  # noqa: E402
from emulator.dispatch import COSMOS3, TRANSFER1, TRANSFER1_UPSAMPLER, TRANSFER25, identify, split_launch  # noqa: E402

from cosmoskit._core import remotefiles  # noqa: E402


@pytest.mark.parametrize("target, is_module, model", [
    ("cosmos_transfer1/diffusion/inference/transfer.py", False, TRANSFER1),
    ("transfer.py", False, TRANSFER1),
    ("cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py", False, TRANSFER1_UPSAMPLER),
    ("examples/inference.py", False, TRANSFER25),
    ("/workspace/examples/inference.py", False, TRANSFER25),
    ("examples.inference", True, TRANSFER25),
    ("cosmos_framework.scripts.inference", True, COSMOS3),
    ("cosmos_framework/scripts/inference.py", False, COSMOS3),
    ("inference.py", False, None),  # the bare name is ambiguous: not guessed
    ("examples/multiview.py", False, None),
    ("cosmos_framework.scripts.train", True, None),
])
def test_identify(target, is_module, model):
    assert identify(target, is_module) == model


@pytest.mark.parametrize("argv, target, is_module, rest, torchrun", [
    (["python", "examples/inference.py", "-i", "a"], "examples/inference.py", False, ["-i", "a"], False),
    ([".venv/bin/python3.12", "-m", "cosmos_framework.scripts.inference", "-o", "x"],
     "cosmos_framework.scripts.inference", True, ["-o", "x"], False),
    (["torchrun", "--nproc-per-node=4", "--master-port=29500", "-m", "cosmos_framework.scripts.inference", "-i", "s"],
     "cosmos_framework.scripts.inference", True, ["-i", "s"], True),
    (["torchrun", "--nproc_per_node=8", "--master_port=12341", "examples/inference.py", "-i", "s"],
     "examples/inference.py", False, ["-i", "s"], True),
    (["cosmos_transfer1/diffusion/inference/transfer.py", "--x"], "cosmos_transfer1/diffusion/inference/transfer.py",
     False, ["--x"], False),
])
def test_split_launch(argv, target, is_module, rest, torchrun, monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK",
                "ROLE_RANK", "ROLE_NAME", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    ctx, got, module, args = split_launch(argv)
    assert (got, module, args, ctx.torchrun) == (target, is_module, rest, torchrun)


@pytest.mark.parametrize("frames, chunk, overlap, chunks", [
    (1, 93, 1, 1), (30, 93, 1, 1), (93, 93, 1, 1), (94, 93, 1, 2), (121, 93, 1, 2), (185, 93, 1, 2),
    (186, 93, 1, 3), (121, 93, 0, 2), (200, 93, 2, 3),
])
def test_transfer25_chunks(frames, chunk, overlap, chunks):
    assert timing.transfer25_chunks(frames, chunk, overlap) == chunks


@pytest.mark.parametrize("frames, chunk, overlap, expected", [
    (121, 121, 1, (1, 121)), (121, 93, 1, (2, 93)), (33, 7, 1, (4, 9)), (1, 93, 1, (1, 1)),
    (101, 101, 1, (1, 101)), (100, 94, 1, (2, 97)), (189, 93, 1, (3, 93)),
])
def test_cosmos3_chunks(frames, chunk, overlap, expected):
    assert timing.cosmos3_chunks(frames, chunk, overlap) == expected


def test_cosmos3_overlap_must_leave_a_stride():
    with pytest.raises(ValueError, match="num_conditional_frames must be smaller"):
        timing.cosmos3_chunks(50, 9, 9)


@pytest.mark.parametrize("spc, steps, n, factor, extra, seconds", [
    (10, 35, 1, None, 1.0, 10), (10, 70, 1, None, 1.0, 20), (10, 35, 4, None, 1.0, 40), (10, 35, 4, 0.35, 1.0, 20.5),
    (10, 35, 1, None, 1.5, 15), (0, 35, 3, None, 1.0, 0), (10, 4, 1, None, 1.0, 10 * 4 / 35),
])
def test_chunk_seconds(spc, steps, n, factor, extra, seconds):
    assert timing.chunk_seconds(spc, steps, n, factor, extra) == pytest.approx(seconds)


@pytest.mark.parametrize("module, level, visible", [
    ("cosmos_transfer2.inference", "INFO", True),
    ("cosmos_transfer2.inference", "CRITICAL", True),
    ("cosmos_transfer2.inference", "DEBUG", False),
    ("cosmos_transfer2._src.transfer2.inference.inference_pipeline", "INFO", False),
    ("cosmos_transfer2._src.imaginaire.auxiliary.guardrail.common.presets", "CRITICAL", False),
    ("cosmos_transfer2._src.imaginaire.utils.checkpoint_db", "INFO", True),
    ("projects.x", "INFO", False),
    ("cosmos_oss.init", "INFO", True),
])
def test_transfer25_console_filter(module, level, visible):
    from emulator.transfer25 import CONSOLE_EXCLUDE, CONSOLE_INCLUDE

    assert modellog.console_visible(module, level, CONSOLE_INCLUDE, CONSOLE_EXCLUDE) is visible


SCHEMA = {
    "name": v.Field(v.string()),
    "guidance": v.Field(v.integer(ge=0, le=7), 3),
    "weight": v.Field(v.number(ge=0.0, le=1.0), 1.0),
    "flag": v.Field(v.boolean(), False),
    "mode": v.Field(v.literal("a", "b", "c"), "a"),
    "labels": v.Field(v.list_of(v.integer()), None, nullable=True),
    "note": v.Field(v.string(), None, nullable=True),
}


@pytest.mark.parametrize("data, lines", [
    ({"name": "x", "guidance": 7.5}, ["guidance", "  Input should be a valid integer, got a number with a fractional "
                                      "part [type=int_from_float, input_value=7.5, input_type=float]"]),
    ({"name": "x", "guidance": "x"}, ["guidance", "  Input should be a valid integer, unable to parse string as an "
                                      "integer [type=int_parsing, input_value='x', input_type=str]"]),
    ({"name": "x", "weight": 1.5}, ["weight", "  Input should be less than or equal to 1 [type=less_than_equal, "
                                    "input_value=1.5, input_type=float]"]),
    ({"name": "x", "flag": "maybe"}, ["flag", "  Input should be a valid boolean, unable to interpret input "
                                      "[type=bool_parsing, input_value='maybe', input_type=str]"]),
    ({"name": "x", "mode": "d"}, ["mode", "  Input should be 'a', 'b' or 'c' [type=literal_error, input_value='d', "
                                  "input_type=str]"]),
    ({"name": "x", "labels": [1, "x"]}, ["labels.1", "  Input should be a valid integer, unable to parse string as an "
                                         "integer [type=int_parsing, input_value='x', input_type=str]"]),
    ({"guidance": True, "extra_key": "long value " * 10},
     # as pydantic 2.13 prints it (checked against the real library): long inputs cut to 25 + ... + 24
     ["name", "  Field required [type=missing, input_value={'guidance': True, 'extra...long value long value '}, "
              "input_type=dict]", "extra_key", "  Extra inputs are not permitted [type=extra_forbidden, "
              "input_value='long value long value lo... long value long value ', input_type=str]"]),
])
def test_pydantic_error_text(data, lines):
    with pytest.raises(v.ValidationError) as info:
        v.validate(SCHEMA, data, "Model", "2.11")
    text = str(info.value).splitlines()
    shown = [ln for ln in text[1:] if not ln.startswith("    For further information")]
    assert shown == lines
    n = len(lines) // 2
    assert text[0] == f"{n} validation error{'s' if n > 1 else ''} for Model"
    assert text[2 + 1] == f"    For further information visit https://errors.pydantic.dev/2.11/v/{info.value.errors[0].type}"


def test_valid_data_is_cleaned_with_defaults():
    assert v.validate(SCHEMA, {"name": "x", "guidance": "5", "flag": "yes", "note": None}, "Model", "2.11") == {
        "name": "x", "guidance": 5, "weight": 1.0, "flag": True, "mode": "a", "labels": None, "note": None}


# --------------------------------------------------------------------------- the bundle


def test_the_bundle_is_deterministic_and_holds_the_whole_package():
    a, b = remotefiles.emulator_bundle_bytes(), remotefiles.emulator_bundle_bytes()
    assert a == b and a.startswith(b"#!/usr/bin/env python3\n")
    path_like = __import__("io").BytesIO(a)
    with zipfile.ZipFile(path_like) as z:
        names = z.namelist()
        assert names[0] == "__main__.py" and names[1:] == sorted(names[1:])
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    package = sorted(p.name for p in (ROOT / "remote" / "emulator").glob("*.py"))
    assert names[1:] == [f"emulator/{n}" for n in package]


def test_the_bundle_changes_with_its_sources():
    sources = remotefiles.emulator_sources()
    changed = [(n, d + b"\n# changed\n" if n == "emulator/timing.py" else d) for n, d in sources]
    assert remotefiles.emulator_bundle_bytes(changed) != remotefiles.emulator_bundle_bytes(sources)


def test_the_bundle_is_cached_by_content_and_runs_every_model(tmp_path):
    path = remotefiles.emulator_bundle(tmp_path / "cache")
    assert path.name == "cosmos_emulator.pyz" and path.parent.parent == tmp_path / "cache" / "emulator"
    assert remotefiles.emulator_bundle(tmp_path / "cache") == path
    assert path.read_bytes() == remotefiles.emulator_bundle_bytes()
    env = {k: val for k, val in os.environ.items() if not k.startswith("COSMOS_")}
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"name": "x", "guidance": 9, "edge": {}}))  # invalid for both models
    for prefix, needle in ((["python", "examples/inference.py"], "for InferenceArguments"),
                           (["python", "-m", "cosmos_framework.scripts.inference"], "for OmniSampleOverrides")):
        r = subprocess.run([sys.executable, str(path), *prefix, "-i", str(spec), "-o", str(tmp_path / "o")],
                           capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
        assert r.returncode == 1 and needle in r.stderr, r.stderr
    r = subprocess.run([sys.executable, str(path), "transfer.py"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "--controlnet_specs" in r.stderr  # Transfer 1's own argparse, from the bundle
