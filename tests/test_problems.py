"""Every problem of a folder at once, one line each: a table of broken folders (real frames, real EXR files,
real videos) with the exact set of lines ``prepare`` reports, the sidecar's checks as a table of YAML texts,
the pure line-making functions as tables, and the drop folder's REJECTED.txt listing them all."""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cosmoskit._core.media import make_test_video

from conftest import configure
from test_depth import halves, write_exr
from test_prepare import frames
from test_watch import FAST, run_once


# ---------------------------------------------------------------- building broken folders
def houdini(d: Path, n: int = 6, depth: int | None = None, seg: int | None = None) -> None:
    frames(d, "color.%04d.png", "rgb", n=n)
    frames(d, "depth.%04d.png", "depth", n=n if depth is None else depth)
    if seg is not None:
        frames(d, "segmentation.%04d.png", "seg", n=seg)


def exr_depth(d: Path, n: int = 6, pattern: str = "depth.{:04d}.exr", **channels: str) -> None:
    """``n`` EXR depth frames with some texture (so the files have a few kB), ``Z`` unless ``channels`` say."""
    for i in range(1, n + 1):
        z = halves(2 + i, 10 + i) + np.linspace(0, 1, 32, dtype=np.float32)
        write_exr(d / pattern.format(i), dict.fromkeys(channels or {"Z": ""}, z))


def truncate(path: Path, keep: int | None = None, cut: int | None = None) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep is not None else data[: len(data) - (cut or len(data) // 2)])


def bigger(d: Path, name: str, kind: str = "rgb") -> None:
    """Replace ``name`` with a 64x36 frame of the same kind."""
    tmp = d.parent / f"{d.name}-big"
    frames(tmp, "x.%04d.png", kind, n=1, size="64x36")
    shutil.copy(tmp / "x.0001.png", d / name)
    shutil.rmtree(tmp)


def story_sidecar_typo_hid_a_gap(d: Path) -> None:
    houdini(d)
    (d / "depth.0003.png").unlink()
    (d / "cosmos.yaml").write_text("prompt: a street\nwieghts: {vis: 0.3}\n")


def story_exr_hid_truncated_missized_and_missing(d: Path) -> None:
    frames(d, "color.%04d.png", "rgb", n=6)
    exr_depth(d, 6)
    (d / "depth.0003.exr").unlink()
    truncate(d / "depth.0004.exr", cut=10)            # 18 rows, ZIP: 2 chunks of 16 lines; the last is cut
    write_exr(d / "depth.0005.exr", {"Z": halves(1, 2, size=(64, 36))})
    truncate(d / "color.0002.png")


def exr_unfinished(d: Path) -> None:
    from cosmoskit_dropfolder.exr import parse_header

    frames(d, "color.%04d.png", "rgb", n=2)
    exr_depth(d, 2)
    data = bytearray((d / "depth.0002.exr").read_bytes())
    at = parse_header(bytes(data)).table_at
    data[at:at + 16] = bytes(16)                      # the chunk table a renderer fills in when it closes the file
    (d / "depth.0002.exr").write_bytes(bytes(data))


def exr_without_depth(d: Path) -> None:
    frames(d, "color.%04d.png", "rgb", n=2)
    exr_depth(d, 2, **{"N.x": "", "N.y": ""})


def exr_colour(d: Path) -> None:
    exr_depth(d, 2, pattern="color.{:04d}.exr", R="", G="", B="")
    frames(d, "depth.%04d.png", "depth", n=2)


def ends_differ(d: Path) -> None:
    frames(d, "color.%04d.png", "rgb", n=6)
    frames(d, "depth.%04d.png", "depth", n=4)
    frames(d, "segmentation.%04d.png", "seg", n=7)
    frames(d, "edge.%04d.png", "depth", n=8)


def starts_differ(d: Path) -> None:
    frames(d, "color.%04d.png", "rgb", n=6)
    frames(d, "depth.%04d.png", "depth", n=5, start=0)


def missized_run_and_modality(d: Path) -> None:
    frames(d, "color.%04d.png", "rgb", n=6)
    frames(d, "depth.%04d.png", "depth", n=6, size="64x36")
    for n in (3, 4, 5):
        bigger(d, f"color.{n:04d}.png")


def no_rgb_still_checks_depth(d: Path) -> None:
    frames(d, "depth.%04d.png", "depth", n=5)
    (d / "depth.0002.png").unlink()
    (d / "depth.0004.png").write_bytes(b"")


def sidecar_everything_wrong(d: Path) -> None:
    houdini(d, 2)
    (d / "cosmos.yaml").write_text("prompt: x\nfps: fast\npriority: 1.5\ndepth: near\nweights: {vis: 2, vs: 0.5}\n"
                                   "seed: 1\nseed: 2\n")
    (d / "prompt.txt").write_text("another prompt")


def two_shots_in_one_drop(d: Path) -> None:
    for s in ("shotA", "shotB"):
        frames(d, f"{s}_color.%04d.png", "rgb", n=4)
        frames(d, f"{s}_depth.%04d.png", "depth", n=4)
    (d / "shotB_depth.0003.png").unlink()


def subfolders_with_tiff_and_duplicates(d: Path) -> None:
    frames(d / "rgb", "%04d.png", "rgb", n=4)
    frames(d / "depth", "%04d.png", "depth", n=4)
    (d / "rgb" / "0005.tif").write_bytes(b"II*\x00")
    (d / "rgb" / "0006.tif").write_bytes(b"II*\x00")
    shutil.copy(d / "depth" / "0002.png", d / "depth" / "2.png")


def video_at_another_rate(d: Path) -> None:
    make_test_video(d / "color.mp4", width=32, height=18, frames=6, fps=24)
    frames(d, "depth.%04d.png", "depth", n=5)


def no_prompt_and_a_gap(d: Path) -> None:
    houdini(d, 4)
    (d / "depth.0002.png").unlink()


def prompt_misspelt(d: Path) -> None:
    houdini(d, 2)
    (d / "cosmos.yaml").write_text("promt: a street\n")


def nothing_usable(d: Path) -> None:
    d.mkdir(parents=True)
    (d / "notes.txt").write_text("x")
    (d / "cosmos.yml").write_text("prompt: x\n")
    (d / "cosmos.yaml").write_text("- a list\n")


S = "(the depth frames jump from"
CASES: list[tuple[str, Callable[[Path], None], dict[str, Any], set[str]]] = [
    ("a sidecar typo hid a gap", story_sidecar_typo_hid_a_gap, {}, {
        "cosmos.yaml:2: unknown key 'wieghts' (did you mean 'weights'?)",
        f"depth.0003.png: missing {S} depth.0002.png to depth.0004.png)",
    }),
    ("an EXR hid truncated, mis-sized and missing frames", story_exr_hid_truncated_missized_and_missing, {}, {
        "color.0002.png: truncated (the file ends inside its IDAT chunk)",
        f"depth.0003.exr: missing {S} depth.0002.exr to depth.0004.exr)",
        "depth.0004.exr: truncated (the file ends inside its chunk 2 of 2)",
        "depth.0005.exr: 64x36, but depth.0001.exr is 32x18; every frame must have one size",
    }),
    ("an unfinished EXR", exr_unfinished, {}, {
        "depth.0002.exr: incomplete (no chunk 1 of 2: the renderer did not finish writing it)",
    }),
    ("EXR frames with no depth channel", exr_without_depth, {}, {
        "depth.0001.exr … depth.0002.exr: no depth channel (channels: N.x, N.y); cosmoskit reads Z, depth.Z, Y or R "
        "(2 frames)",
    }),
    ("colour frames as EXR", exr_colour, {}, {
        "color.####.exr: EXR frames are read for depth only; write the RGB frames as PNG or JPEG",
    }),
    ("missing and extra frames at the end", ends_differ, {}, {
        "depth.0005.png … depth.0006.png: 2 frames missing (the RGB frames go on to color.0006.png)",
        "segmentation.0007.png: a segmentation frame beyond the last RGB frame color.0006.png",
        "edge.0007.png … edge.0008.png: 2 edge frames beyond the last RGB frame color.0006.png",
    }),
    ("counts differ, numbered differently", starts_differ, {}, {
        "depth.####.png (depth.0000.png … depth.0004.png): 5 depth frames, but the RGB color.####.png "
        "(color.0001.png … color.0006.png) has 6; counts must be equal",
    }),
    ("a run of mis-sized frames, a mis-sized modality", missized_run_and_modality, {}, {
        "color.0003.png … color.0005.png: 64x36, but color.0001.png is 32x18; every frame must have one size "
        "(3 frames)",
        "depth.0001.png: depth is 64x36, but the RGB color.0001.png is 32x18",
    }),
    ("no RGB, and the depth is still checked", no_rgb_still_checks_depth, {}, {
        "no RGB frames or video (expected color.####.png, rgb_####.png, rgb/ or color.mp4; found only "
        "depth.####.png)",
        f"depth.0002.png: missing {S} depth.0001.png to depth.0003.png)",
        "depth.0004.png: empty file (a copy still running, or a failed render?)",
    }),
    ("a sidecar with every kind of mistake", sidecar_everything_wrong, {}, {
        "cosmos.yaml:2: fps must be a number from 1 to 240, not 'fast'",
        "cosmos.yaml:3: priority must be a whole number, not 1.5",
        "cosmos.yaml:4: depth must be distance or inverse, not 'near' (distance: larger values are farther, as in "
        "a Z pass; inverse: larger values are nearer)",
        "cosmos.yaml:5: weight vis=2 is outside 0..1",
        "cosmos.yaml:5: unknown control 'vs' (did you mean 'vis'?)",
        "cosmos.yaml:7: seed: given twice (also on line 6); keep one",
        "prompt.txt: the prompt is also given in cosmos.yaml; keep one",
    }),
    ("two shots in a drop folder, one with a gap", two_shots_in_one_drop, {"single": True}, {
        "holds 2 shots (shotA, shotB); put one shot per folder",
        "shotB_depth.0003.png: missing (the depth frames jump from shotB_depth.0002.png to shotB_depth.0004.png)",
    }),
    ("subfolders: TIFF beside PNG, a number twice", subfolders_with_tiff_and_duplicates, {}, {
        "TIF frames are not supported (2 files, rgb/0005.tif … rgb/0006.tif); write PNG (16-bit PNG or OpenEXR for "
        "depth) or JPEG",
        "depth/2.png: frame 2 given twice (also depth/0002.png)",
    }),
    ("frames beside a video of another rate and length", video_at_another_rate, {"fps": 30}, {
        "depth.####.png (depth.0001.png … depth.0005.png): 5 depth frames, but the RGB color.mp4 has 6; counts "
        "must be equal",
        "color.mp4: runs at 24 fps but 30 fps was asked for the frames; they must match",
    }),
    ("the drop folder: no prompt text, and a gap", no_prompt_and_a_gap, {"require_text": True}, {
        "no prompt text: add cosmos.yaml (prompt: …) or prompt.txt to the folder, or set watch.prompt in "
        "cosmoskit.yaml",
        f"depth.0002.png: missing {S} depth.0001.png to depth.0003.png)",
    }),
    ("the drop folder: the prompt key misspelt", prompt_misspelt, {"require_text": True}, {
        "cosmos.yaml:1: unknown key 'promt' (did you mean 'prompt'?)",
        "no prompt text: add cosmos.yaml (prompt: …) or prompt.txt to the folder, or set watch.prompt in "
        "cosmoskit.yaml",
    }),
    ("nothing usable", nothing_usable, {}, {
        "cosmos.yaml and cosmos.yml: keep one",
        "cosmos.yaml:1: must be a mapping of keys (prompt:, weights: …), not list",
        "no frames or videos (expected color.####.png, rgb_####.png, rgb/ depth/ seg/ folders, or color.mp4)",
    }),
]


@pytest.mark.parametrize("build, options, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_problem_of_a_broken_folder_one_line_each(project, build, options, expected):
    from cosmoskit_dropfolder.prepare import PrepareError, check, prepare

    folder = project / "broken"
    build(folder)
    before = sorted(p.name for p in folder.rglob("*"))
    with pytest.raises(PrepareError) as info:
        prepare(folder, **options)
    lines = info.value.lines()
    assert set(lines) == expected, "\n".join(lines)
    assert len(lines) == len(expected)                       # no line twice
    assert {p.line() for p in check(folder, **options).problems} == expected
    assert sorted(p.name for p in folder.rglob("*")) == before  # nothing written, nothing lost


def test_a_frame_rate_that_disagrees_with_a_given_video_is_one_more_line(project):
    from cosmoskit_dropfolder.prepare import check

    folder = project / "rate"
    make_test_video(folder / "color.mp4", width=32, height=18, frames=6, fps=24)
    frames(folder, "depth.%04d.png", "depth", n=6)
    assert [p.line() for p in check(folder, fps=30).problems] == [
        "color.mp4: runs at 24 fps but 30 fps was asked for the frames; they must match"]


def test_the_cli_prints_every_line_and_json_lists_them(project, cli):
    folder = project / "story"
    story_exr_hid_truncated_missized_and_missing(folder)
    (folder / "cosmos.yaml").write_text("prompt: x\nfsp: 30\n")
    result = cli("prepare", str(folder))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"Error: {folder}: 5 problems found; nothing was encoded"
    assert lines[:-1] == [
        f"{folder}/cosmos.yaml:2: unknown key 'fsp' (did you mean 'fps'?)",
        f"{folder}/color.0002.png: truncated (the file ends inside its IDAT chunk)",
        f"{folder}: depth.0003.exr: missing {S} depth.0002.exr to depth.0004.exr)",
        f"{folder}/depth.0004.exr: truncated (the file ends inside its chunk 2 of 2)",
        f"{folder}/depth.0005.exr: 64x36, but depth.0001.exr is 32x18; every frame must have one size",
    ]
    as_json = cli("prepare", str(folder), "--json")
    assert as_json.exit_code == 1
    assert as_json.json() == {"folder": str(folder), "ok": False, "problems": lines[:-1]}


def test_the_drop_folder_rejects_with_every_line_in_rejected_txt(project):
    configure(project, watch=FAST)
    drop = project / "drop"
    story_sidecar_typo_hid_a_gap(drop / "shot")
    truncate(drop / "shot" / "color.0005.png")
    (drop / "shot" / "READY").write_text("")
    session = run_once()
    [event] = session.kinds("rejected")
    expected = ["cosmos.yaml:2: unknown key 'wieghts' (did you mean 'weights'?)",
                f"depth.0003.png: missing {S} depth.0002.png to depth.0004.png)",
                "color.0005.png: truncated (the file ends inside its IDAT chunk)"]
    assert sorted(event["reasons"]) == sorted(expected)
    report = (drop / "rejected" / "shot" / "REJECTED.txt").read_text().splitlines()
    assert sorted(report[1:1 + len(expected)]) == sorted(expected)
    assert report[1 + len(expected):] == ["", "Fix the problems and drop the folder into the drop folder again."]


# ---------------------------------------------------------------- the sidecar, as a table of texts
@pytest.mark.parametrize("text, expected", [
    ("prompt: fine\n", []),
    ("prompt: fine\nweights: [{vis: 0.3}, 'edge=0.6,seg=0.4', {weights: {depth: 1.0}, seed: 7, priority: 2}]\n", []),
    ("just the prompt text\n", []),
    ("prompt: fine\nweights: {vis: 0.3\n", ["cosmos.yaml:3: broken YAML: expected ',' or '}', but got '<stream end>'"]),
    ("prompt: ''\ntext: also\n", ["cosmos.yaml:2: both prompt: and text: given; keep one"]),
    ("prompt: 5\nnegative: [x]\n", ["cosmos.yaml:1: prompt: must be non-empty text, not 5",
                                     "cosmos.yaml:2: negative: must be non-empty text, not ['x']"]),
    ("prompt: x\nname: ../../evil\n", ["cosmos.yaml:2: name: the name '../../evil' holds a path separator, '..' or "
                                        "a control character; names may not reach outside the folder"]),
    ("prompt: x\nguidance: 50\nsigma_max: high\nblur_strength: hard\nnum_steps: 0\n", [
        "cosmos.yaml:2: guidance must be between 0 and 20, not 50.0",
        "cosmos.yaml:3: sigma_max must be a number, not str 'high'",
        "cosmos.yaml:4: blur_strength must be one of very_low, low, medium, high, very_high, not 'hard'",
        "cosmos.yaml:5: num_steps must be between 1 and 1000, not 0"]),
    ("prompt: x\nweights:\n  - {vis: 0.3}\n  - {weights: {vs: 0.5}, sed: 3, priority: x}\n  - edge\n  - {edge: 0}\n"
     "  - 7\n", [
        "cosmos.yaml:4: weights #2: unknown key 'sed' (a run takes weights, priority, num_steps, guidance, seed, "
        "sigma_max, blur_strength, canny_threshold)",
        "cosmos.yaml:4: weights #2: priority must be a whole number, not 'x'",
        "cosmos.yaml:4: weights #2: unknown control 'vs' (did you mean 'vis'?)",
        "cosmos.yaml:5: weights #3: weight 'edge' needs the form name=value (e.g. vis=0.3)",
        "cosmos.yaml:6: weights #4: at least one control weight must be above 0",
        "cosmos.yaml:7: weights #5: weights must be a mapping like {vis: 0.3, depth: 0.5} or 'vis=0.3,depth=0.5', "
        "not 7"]),
    ("prompt: x\nweights: []\nwait: 3\nZ: 1\n", [
        "cosmos.yaml:2: weights: is an empty list",
        "cosmos.yaml:3: unknown key 'wait' (known: prompt, text, negative_prompt, negative, name, fps, priority, "
        "depth, weights, model, num_steps, guidance, seed, sigma_max, blur_strength, canny_threshold)",
        "cosmos.yaml:4: unknown key 'Z' (known: prompt, text, negative_prompt, negative, name, fps, priority, depth, "
        "weights, model, num_steps, guidance, seed, sigma_max, blur_strength, canny_threshold)"]),
    ("prompt: x\nweights: 'vis=x,depth=0'\n", ["cosmos.yaml:2: weight vis='x' is not a number"]),
    ("prompt: x\nseed: 1-4\nnum_steps: [20, 35]\nguidance: '3,7.5'\n", []),  # the command line's sweep forms
    ("prompt: x\nseed: 1-3,2\nnum_steps: [20, 0]\nguidance: '3,x'\n", [
        "cosmos.yaml:2: seed '1-3,2': 2 is given twice",
        "cosmos.yaml:3: num_steps must be between 1 and 1000, not 0",
        "cosmos.yaml:4: guidance '3,x': 'x' is not a number"]),
    ("prompt: x\nseed: 1-40\nweights: ['vis=1', 'edge=1']\n", [
        "cosmos.yaml:3: 80 runs (weight sets x swept values); at most 64 per folder"]),
])
def test_sidecar_problems_each_with_its_line(text, expected):
    from cosmoskit_dropfolder.sidecar import parse_text

    _, problems = parse_text(text)
    assert [p.line() for p in problems] == expected


def test_a_broken_sidecar_keeps_what_it_could_read_and_read_never_hides_the_frames(project):
    from cosmoskit_dropfolder import sidecar

    folder = project / "s"
    folder.mkdir()
    (folder / "cosmos.yaml").write_text("promt: x\nfps: 30\npriority: high\n")
    side = sidecar.read(folder)
    assert side.fps == 30.0 and side.priority is None
    assert [p.line() for p in side.problems] == ["cosmos.yaml:1: unknown key 'promt' (did you mean 'prompt'?)",
                                                 "cosmos.yaml:3: priority must be a whole number, not 'high'"]
    # no usable text: a stand-in, so a caller checking for text goes on to prepare, which reports it all
    assert side.text == sidecar.STAND_IN_TEXT
    (folder / "cosmos.yaml").write_text("prompt: a street\nfps: 30\n")
    clean = sidecar.read(folder)
    assert (clean.text, clean.fps, clean.problems, clean.runs) == ("a street", 30.0, [], [{}])


# ---------------------------------------------------------------- the line-making functions, as tables
def seq(numbers: list[int], pattern: str = "depth.{:04d}.png"):
    from cosmoskit_dropfolder.layout import Sequence

    return Sequence("depth", pattern.replace("{:04d}", "####"), {n: [pattern.format(n)] for n in numbers}, ".png")


@pytest.mark.parametrize("numbers, expected", [
    ([1, 2, 3], []),
    ([1, 3], ["depth.0002.png: missing (the depth frames jump from depth.0001.png to depth.0003.png)"]),
    ([1, 5, 6, 9], ["depth.0002.png … depth.0004.png: 3 frames missing (the depth frames jump from depth.0001.png "
                    "to depth.0005.png)",
                    "depth.0007.png … depth.0008.png: 2 frames missing (the depth frames jump from depth.0006.png "
                    "to depth.0009.png)"]),
])
def test_gap_lines(numbers, expected):
    from cosmoskit_dropfolder.layout import gap_problems

    assert [p.line() for p in gap_problems(seq(numbers), "depth")] == expected


@pytest.mark.parametrize("numbers, rgb, expected", [
    ([1, 2, 3], [1, 2, 3], []),
    ([1, 2], [1, 2, 3], ["depth.0003.png: missing (the RGB frames go on to color.0003.png)"]),
    ([1, 2, 3, 4], [1, 2], ["depth.0003.png … depth.0004.png: 2 depth frames beyond the last RGB frame "
                            "color.0002.png"]),
    ([1, 2, 3], [1, 2], ["depth.0003.png: a depth frame beyond the last RGB frame color.0002.png"]),
])
def test_end_lines(numbers, rgb, expected):
    from cosmoskit_dropfolder.layout import end_problems

    assert [p.line() for p in end_problems(seq(numbers), seq(rgb, "color.{:04d}.png"), "depth")] == expected


@pytest.mark.parametrize("faults, expected", [
    ([], []),
    ([(0, "a.png", "empty")], ["a.png: empty"]),
    ([(0, "a.png", "empty"), (1, "b.png", "empty"), (2, "c.png", "empty")], ["a.png … c.png: empty (3 frames)"]),
    ([(0, "a.png", "empty"), (2, "c.png", "empty")], ["a.png: empty", "c.png: empty"]),      # not neighbours
    ([(0, "a.png", "empty"), (1, "b.png", "bad")], ["a.png: empty", "b.png: bad"]),          # not the same fault
])
def test_neighbouring_frames_with_one_fault_share_a_line(faults, expected):
    from cosmoskit_dropfolder.layout import merge_runs

    assert [p.line() for p in merge_runs(faults)] == expected
