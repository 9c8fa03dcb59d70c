"""``cosmoskit prepare``: render layouts -> color.mp4/depth.mp4/seg.mp4, checks before encoding, faithful controls."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cosmoskit._core.media import ffmpeg_exe, probe
from cosmoskit._core.prompts import describe_inputs, find_inputs

SOURCES = {
    "rgb": ("testsrc2", None),
    "depth": ("gradients", "gray"),
    "depth16": ("gradients", "gray16be"),
    "seg": ("testsrc", None),
}


def frames(folder: Path, pattern: str, kind: str = "rgb", *, n: int = 6, size: str = "32x18",
           start: int = 1) -> list[Path]:
    """Write ``n`` numbered PNG frames (``pattern`` is printf-style, e.g. ``color.%04d.png``)."""
    source, pix_fmt = SOURCES[kind]
    target = folder / pattern
    target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
           "-i", f"{source}=size={size}:rate=24", "-frames:v", str(n), "-start_number", str(start)]
    if pix_fmt:
        cmd += ["-pix_fmt", pix_fmt]
    subprocess.run([*cmd, str(target)], check=True)
    return sorted(target.parent.glob(pattern.replace("%04d", "*").replace("%d", "*")))


def houdini(folder: Path, n: int = 6) -> Path:
    frames(folder, "color.%04d.png", "rgb", n=n)
    frames(folder, "depth.%04d.png", "depth", n=n)
    frames(folder, "segmentation.%04d.png", "seg", n=n)
    return folder


def framemd5(path: Path | str, pix_fmt: str, *inputs: str) -> list[str]:
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", *inputs, "-i", str(path),
                          "-f", "framemd5", "-pix_fmt", pix_fmt, "-"], capture_output=True, text=True, check=True)
    return [line.rsplit(",", 1)[1].strip() for line in out.stdout.splitlines() if line and not line.startswith("#")]


def stream_line(path: Path) -> str:
    err = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return next(line for line in err.splitlines() if "Video:" in line)


def test_houdini_layout_gives_videos_a_prompt_accepts(project, cli):
    shot = houdini(project / "shot")
    result = cli("prepare", str(shot), "--json")
    assert result.exit_code == 0, result
    got = result.json()["results"][0]
    assert {k: Path(v["path"]).name for k, v in got["videos"].items()} == {
        "rgb": "color.mp4", "depth": "depth.mp4", "seg": "seg.mp4"}
    assert all(v["action"] == "encoded" for v in got["videos"].values())
    inputs = describe_inputs(find_inputs(shot))
    assert set(inputs) == {"rgb", "depth", "seg"}
    for item in inputs.values():
        assert (item["frames"], item["width"], item["height"], item["fps"]) == (6, 32, 18, 24.0)
    # the prompt command takes the folder as it is
    created = cli("prompt", "create", "a test scene", str(shot), "--json")
    assert created.exit_code == 0, created
    assert set(created.json()["inputs"]) == {"rgb", "depth", "seg"}


def test_depth_and_seg_decode_bit_exact_and_rgb_is_tagged(project):
    from cosmoskit_dropfolder.prepare import prepare

    shot = houdini(project / "shot")
    prepare(shot)
    pattern = ["-start_number", "1"]
    # grey depth: stored full range, lossless; decodes to the very same grey levels and RGB
    assert framemd5(shot / "depth.mp4", "gray") == framemd5(shot / "depth.%04d.png", "gray", *pattern)
    assert framemd5(shot / "depth.mp4", "rgb24") == framemd5(shot / "depth.%04d.png", "rgb24", *pattern)
    assert "yuvj420p(pc" in stream_line(shot / "depth.mp4")
    # seg: planar RGB lossless, every label colour exact (no YUV matrix, no chroma subsampling)
    assert framemd5(shot / "seg.mp4", "rgb24") == framemd5(shot / "segmentation.%04d.png", "rgb24", *pattern)
    assert "gbrp" in stream_line(shot / "seg.mp4")
    # rgb: 4:2:0, converted with and tagged as BT.709 limited range (no decoder guessing)
    line = stream_line(shot / "color.mp4")
    assert "yuv420p(tv, bt709" in line and "High" in line


def test_rgb_prefix_layout_isaac_style(project):
    from cosmoskit_dropfolder.prepare import prepare

    shot = project / "isaac"
    frames(shot, "rgb_%04d.png", "rgb", start=0)
    frames(shot, "distance_to_image_plane_%04d.png", "depth", start=0)
    frames(shot, "semantic_segmentation_%04d.png", "seg", start=0)
    (shot / "distance_to_camera_0000.npy").write_bytes(b"\x93NUMPY")
    (shot / "semantic_segmentation_labels_0000.json").write_text("{}")
    [result] = prepare(shot)
    assert sorted(Path(v["path"]).name for v in result.videos.values()) == ["color.mp4", "depth.mp4", "seg.mp4"]
    assert any("ignored other files" in n for n in result.notes)
    assert result.frames == 6


def test_one_subfolder_per_modality(project):
    from cosmoskit_dropfolder.prepare import prepare

    shot = project / "sub"
    frames(shot / "rgb", "%04d.png", "rgb")
    frames(shot / "depth", "frame_%04d.png", "depth")
    frames(shot / "seg", "%04d.png", "seg")
    [result] = prepare(shot, fps=30)
    assert set(result.videos) == {"rgb", "depth", "seg"}
    assert probe(shot / "color.mp4").fps == 30.0
    assert set(find_inputs(shot)) == {"rgb", "depth", "seg"}


def test_folder_with_videos_is_used_as_it_is(project, videos):
    from cosmoskit_dropfolder.prepare import prepare

    shot = project / "vids"
    shutil.copytree(videos["scene"], shot)
    before = {p.name: p.stat().st_mtime_ns for p in shot.iterdir()}
    [result] = prepare(shot)
    assert {v["action"] for v in result.videos.values()} == {"given"}
    assert {p.name: p.stat().st_mtime_ns for p in shot.iterdir() if p.suffix == ".mp4"} == before
    # RGB frames beside a given depth video: encoded at the video's rate
    mixed = project / "mixed"
    frames(mixed, "color.%04d.png", "rgb", n=8, size="64x36")
    shutil.copy(videos["scene"] / "depth.mp4", mixed / "depth.mp4")
    [result] = prepare(mixed)
    assert result.videos["rgb"]["action"] == "encoded" and result.videos["depth"]["action"] == "given"
    assert describe_inputs(find_inputs(mixed))["rgb"]["frames"] == 8


def test_fps_from_option_then_sidecar_then_24(project):
    from cosmoskit_dropfolder.prepare import prepare

    a, b, c = (frames(project / n, "color.%04d.png") and project / n for n in ("a", "b", "c"))
    (b / "cosmos.yaml").write_text("prompt: x\nfps: 12\n")
    prepare(a)
    prepare(b)
    prepare(c, fps=29.97)
    assert probe(a / "color.mp4").fps == 24.0
    assert probe(b / "color.mp4").fps == 12.0
    assert abs(probe(c / "color.mp4").fps - 29.97) < 0.01


def test_every_problem_is_one_line_naming_the_file_and_nothing_is_encoded(project, cli):
    shot = project / "bad"
    frames(shot, "color.%04d.png", "rgb", n=8)
    frames(shot, "depth.%04d.png", "depth", n=8)
    frames(shot, "segmentation.%04d.png", "seg", n=7)
    (shot / "depth.0004.png").unlink()                                   # a gap
    data = (shot / "color.0003.png").read_bytes()
    (shot / "color.0003.png").write_bytes(data[: len(data) // 2])        # a truncated copy
    (shot / "color.0005.png").write_bytes(b"not a png at all")           # garbage
    frames(project / "big", "x.%04d.png", "rgb", n=1, size="64x36")
    shutil.copy(project / "big" / "x.0001.png", shot / "color.0007.png")  # another size
    (shot / "cosmos.yaml").write_text("prompt: x\nfsp: 30\n")             # and a sidecar typo
    result = cli("prepare", str(shot))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"Error: {shot}: 6 problems found; nothing was encoded"
    assert sorted(lines[:-1]) == sorted([
        f"{shot}/cosmos.yaml:2: unknown key 'fsp' (did you mean 'fps'?)",
        f"{shot}: depth.0004.png: missing (the depth frames jump from depth.0003.png to depth.0005.png)",
        f"{shot}/color.0003.png: truncated (the file ends inside its IDAT chunk)",
        f"{shot}/color.0005.png: not a PNG file",
        f"{shot}/color.0007.png: 64x36, but color.0001.png is 32x18; every frame must have one size",
        f"{shot}: segmentation.0008.png: missing (the RGB frames go on to color.0008.png)",
    ])
    assert not list(shot.glob("*.mp4"))
    as_json = cli("prepare", str(shot), "--json")
    assert as_json.exit_code == 1 and sorted(as_json.json()["problems"]) == sorted(lines[:-1])


def test_no_rgb_and_unsupported_frames(project, cli):
    only_depth = project / "only-depth"
    frames(only_depth, "depth.%04d.png", "depth")
    result = cli("prepare", str(only_depth))
    assert result.exit_code == 1
    assert f"{only_depth}: no RGB frames or video" in result.stderr and "depth.####.png" in result.stderr
    tiff = project / "tiff"
    frames(tiff, "color.%04d.png", "rgb")
    (tiff / "depth.0001.tif").write_bytes(b"II*\x00")
    result = cli("prepare", str(tiff))
    assert "depth.0001.tif: TIF frames are not supported" in result.stderr


def test_second_run_is_a_no_op_and_changed_frames_are_encoded_again(project):
    from cosmoskit_dropfolder.prepare import prepare

    shot = houdini(project / "shot")
    prepare(shot)
    stamp = (shot / "color.mp4").stat().st_mtime_ns
    [again] = prepare(shot)
    assert {v["action"] for v in again.videos.values()} == {"up to date"}
    assert (shot / "color.mp4").stat().st_mtime_ns == stamp
    shutil.copy(shot / "color.0001.png", shot / "color.0002.png")
    [changed] = prepare(shot)
    assert changed.videos["rgb"]["action"] == "encoded" and changed.videos["depth"]["action"] == "up to date"
    # a video the user made, beside frames of the same modality: refused, not overwritten
    other = houdini(project / "other")
    shutil.copy(shot / "color.mp4", other / "rgb.mp4")
    from cosmoskit_dropfolder.prepare import PrepareError

    with pytest.raises(PrepareError) as info:
        prepare(other)
    assert "a second RGB source beside color.####.png; keep one" in info.value.lines()[0]


def test_16_bit_depth_odd_size_and_alpha_are_reported(project):
    from cosmoskit_dropfolder.prepare import prepare

    shot = project / "odd"
    frames(shot, "color.%04d.png", "seg", size="33x19")  # testsrc (testsrc2 rounds odd sizes down)
    frames(shot, "depth.%04d.png", "depth16", size="33x19")
    [result] = prepare(shot)
    assert (result.width, result.height) == (32, 18)
    notes = " ".join(result.notes)
    assert "cropped to 32x18" in notes and "depth.####.png: read as distance" in notes
    info = probe(shot / "depth.mp4")
    assert (info.width, info.height, info.frames) == (32, 18, 6)


def test_several_shots_go_to_their_own_folders_and_name_picks_one(project, cli):
    shots = project / "shots"
    for s in ("shotA", "shotB"):
        frames(shots, f"{s}_color.%04d.png", "rgb")
        frames(shots, f"{s}_depth.%04d.png", "depth")
    picked = cli("prepare", str(shots), "--name", "shotb", "--json")
    assert picked.exit_code == 0, picked
    [only] = picked.json()["results"]
    assert only["folder"] == str(shots / "shotB") and set(only["videos"]) == {"rgb", "depth"}
    both = cli("prepare", str(shots))
    assert both.exit_code == 0, both
    assert (shots / "shotA" / "color.mp4").is_file() and (shots / "shotB" / "depth.mp4").is_file()
    missing = cli("prepare", str(shots), "--name", "shotC")
    assert missing.exit_code == 1 and "no shot named 'shotC' (shots: shotA, shotB)" in missing.stderr


def test_human_output(project, cli):
    shot = houdini(project / "shot")
    result = cli("prepare", str(shot))
    assert result.exit_code == 0, result
    text = " ".join(result.stdout.split())
    assert "6 frames, 32x18, 24 fps" in text
    for name in ("color.mp4", "depth.mp4", "seg.mp4"):
        assert name in text
    assert "cosmoskit prompt create" in text
    again = json.loads(cli("prepare", str(shot), "--json").stdout)
    assert again["results"][0]["videos"]["rgb"]["action"] == "up to date"
    assert os.path.exists(shot / ".cosmoskit-prepare.json")


def test_lone_sequence_jpeg_and_duplicate_numbers(project):
    from cosmoskit_dropfolder.prepare import PrepareError, prepare

    lone = project / "lone"
    frames(lone, "shot_%04d.jpg", "rgb")  # one sequence with a name cosmoskit does not know: the RGB
    [result] = prepare(lone)
    assert result.videos["rgb"]["action"] == "encoded" and any("taken as the RGB sequence" in n for n in result.notes)
    twice = project / "twice"
    frames(twice, "color.%04d.png", "rgb")
    shutil.copy(twice / "color.0002.png", twice / "color.2.png")
    with pytest.raises(PrepareError) as info:
        prepare(twice)
    assert info.value.lines() == ["color.2.png: frame 2 given twice (also color.0002.png)"]
