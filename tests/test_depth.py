"""Measured depth -> depth.mp4: OpenEXR (``Z``, ``depth.Z`` …) and 16-bit PNG frames, written for real with
the OpenEXR package and ffmpeg, mapped with one range per sequence (near = white), decoded back from the video.

The decisions (which channel, which range, which grey) are pure functions, tested as tables first."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

from cosmoskit._core.media import ffmpeg_exe, probe

from conftest import configure
from test_prepare import frames
from test_watch import FAST, ledger_state, run_once

NAN, INF = float("nan"), float("inf")


# ---------------------------------------------------------------- real files
def write_exr(path: Path, channels: dict[str, np.ndarray], **header: object) -> Path:
    """An EXR written by the OpenEXR library itself (ZIP-compressed scan lines, as renderers default to)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage, **header},
                      channels) as f:
        f.write(str(path))
    return path


def write_png16(path: Path, values: np.ndarray) -> Path:
    """A 16-bit grey PNG written by ffmpeg (gray16be, as renderers store it) from exact integer values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = values.shape
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "rawvideo",
                    "-pix_fmt", "gray16le", "-s", f"{w}x{h}", "-i", "-", "-frames:v", "1", "-pix_fmt", "gray16be",
                    str(path)], input=values.astype("<u2").tobytes(), check=True)
    return path


def decoded_grey(video: Path) -> np.ndarray:
    """Every frame of a video as 8-bit grey, decoded by ffmpeg: (frames, height, width)."""
    info = probe(video)
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(video),
                          "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype=np.uint8).reshape(-1, info.height, info.width)


def halves(left: float, right: float, size: tuple[int, int] = (32, 18), sky_columns: int = 0) -> np.ndarray:
    """A depth frame: ``left`` in the left half, ``right`` in the right; the first columns may be sky (inf)."""
    w, h = size
    z = np.empty((h, w), dtype=np.float32)
    z[:, : w // 2], z[:, w // 2:] = left, right
    z[:, :sky_columns] = INF
    return z


# ---------------------------------------------------------------- decisions, as tables
@pytest.mark.parametrize("names, channel, problem", [
    (["Z"], "Z", None),
    (["R", "G", "B", "A", "Z"], "Z", None),
    (["R", "G", "B", "depth.Z"], "depth.Z", None),
    (["R", "G", "B", "ViewLayer.Depth.Z"], "ViewLayer.Depth.Z", None),   # Blender's multilayer EXR
    (["Pz"], "Pz", None),                                                  # Mantra's depth plane
    (["depth"], "depth", None),
    (["N.X", "N.Y", "N.Z", "P.Z"], None, "several depth channels (N.Z, P.Z); keep one"),
    (["zdepth.R", "zdepth.G", "zdepth.B"], "zdepth.R", None),
    (["R", "G", "B", "VRayZDepth.R", "VRayZDepth.G", "VRayZDepth.B"], "VRayZDepth.R", None),
    (["R", "G", "B", "SceneDepth"], "SceneDepth", None),
    (["Y"], "Y", None),
    (["R", "G", "B"], "R", None),                                          # grey saved as RGB
    (["Z", "depth.Z"], "Z", None),                                         # the plain Z first
    (["a.Z", "b.Z"], None, "several depth channels (a.Z, b.Z); keep one"),
    (["N.x", "N.y"], None, "no depth channel (channels: N.x, N.y); cosmoskit reads Z, depth.Z, Y or R"),
])
def test_which_channel_holds_the_depth(names, channel, problem):
    from cosmoskit_dropfolder.exr import pick_depth_channel

    assert pick_depth_channel(names) == (channel, problem)


@pytest.mark.parametrize("mode, values, near, far, sky", [
    # distance: the 0.5th percentile is near, the 99.5th far; inf, NaN, 0, negatives and 1e10 are sky
    ("distance", [1, 2, 4, 8], 1.015, 7.94, 0),       # numpy's linear interpolation
    ("distance", [2, 2, 8, 8, INF, NAN, 0, -1, 1e10], 2, 8, 5),
    ("distance", [5, 5, 5], 5, 5, 0),
    ("distance", [INF, NAN, 0], 0, 0, 3),
    # inverse: larger = nearer, so the 99.5th percentile is near; 0 is a real value (infinitely far)
    ("inverse", [0, 100, 200], 199, 1, 0),
    ("inverse", [10, 20, NAN, INF], 19.95, 10.05, 2),
])
def test_the_range_is_chosen_from_the_whole_sequence(mode, values, near, far, sky):
    from cosmoskit_dropfolder.depthmap import choose_range

    # the samples of two "frames" give one range
    rng = choose_range([np.array(values[: len(values) // 2]), np.array(values[len(values) // 2:])], mode)
    assert (round(rng.near, 3), round(rng.far, 3), rng.sky) == (pytest.approx(near, abs=1e-3),
                                                                pytest.approx(far, abs=1e-3), sky)


@pytest.mark.parametrize("mode, near, far, values, greys", [
    # inverse depth: (1/d - 1/far) / (1/near - 1/far), near = white
    ("distance", 2, 8, [2, 4, 8], [255, 85, 0]),
    ("distance", 1, 100, [1, 2, 10, 100], [255, 126, 23, 0]),
    ("distance", 2, 8, [1, 16], [255, 0]),                       # beyond the range: clipped
    ("distance", 2, 8, [INF, -INF, NAN, 0, -3, 1e10], [0] * 6),  # sky is black, like Depth Anything's sky
    ("distance", 5, 5, [5, INF], [255, 0]),                      # flat: the one depth there is, is the nearest
    ("inverse", 200, 0, [0, 100, 200, NAN], [0, 128, 255, 0]),   # linear, larger = brighter
])
def test_depth_values_become_grey_levels(mode, near, far, values, greys):
    from cosmoskit_dropfolder.depthmap import DepthRange, to_grey

    rng = DepthRange(mode, near, far, valid=1, sky=0)
    assert to_grey(np.array(values, dtype=np.float64), rng).tolist() == greys


def test_the_sample_of_a_frame_is_spread_evenly_and_bounded():
    from cosmoskit_dropfolder.depthmap import sample

    frame = np.arange(2160 * 3840, dtype=np.float32).reshape(2160, 3840)
    got = sample(frame, limit=65536)
    assert 50000 < got.size <= 65536 and got[0] == 0 and got.max() > frame.max() * 0.99
    assert sample(np.ones((18, 32)), limit=65536).size == 18 * 32


# ---------------------------------------------------------------- real sequences
def test_exr_z_depth_maps_one_range_over_the_sequence_near_is_white(project):
    from cosmoskit_dropfolder.prepare import prepare

    shot = project / "exr"
    frames(shot, "color.%04d.png", "rgb", n=3)
    # three frames with different ranges: 2..4, 4..8 (with sky), 2..8
    write_exr(shot / "depth.0001.exr", {"Z": halves(2, 4)})
    write_exr(shot / "depth.0002.exr", {"Z": halves(4, 8, sky_columns=4)})
    write_exr(shot / "depth.0003.exr", {"Z": halves(2, 8)})
    [result] = prepare(shot)
    assert result.videos["depth"]["action"] == "encoded"
    assert "mapped from EXR channel Z" in result.videos["depth"]["encoding"]
    grey = decoded_grey(shot / "depth.mp4")
    assert grey.shape == (3, 18, 32)
    left, right = grey[:, 9, 10], grey[:, 9, 25]
    # one distance, one grey level, in every frame: 2 -> 255, 4 -> 85, 8 -> 0 (not each frame's own 0..255)
    assert left.tolist() == [255, 85, 255] and right.tolist() == [85, 0, 0]
    assert (grey[1, :, :4] == 0).all()                      # sky: black
    assert " ".join(result.notes).count("2 and nearer -> white, 8 and farther -> black") == 1
    assert "sky" in " ".join(result.notes)
    # nothing changed: nothing is encoded again, and the note still says how depth was mapped
    [again] = prepare(shot)
    assert again.videos["depth"]["action"] == "up to date"
    assert any("2 and nearer -> white" in n for n in again.notes)


def test_exr_depth_z_beside_rgb_half_float_and_a_cropped_data_window(project):
    from cosmoskit_dropfolder.prepare import prepare

    shot = project / "layers"
    frames(shot, "color.%04d.png", "rgb", n=2)
    beauty = np.zeros((18, 32, 3), dtype=np.float16)
    write_exr(shot / "depth.0001.exr", {"RGB": beauty, "depth.Z": halves(1, 3).astype(np.float16)})
    # frame 2 holds pixels only inside x 16..31, y 0..17 (a renderer's data window): the rest has no depth
    write_exr(shot / "depth.0002.exr", {"RGB": beauty[:, 16:], "depth.Z": np.full((18, 16), 3, np.float16)},
              dataWindow=(np.array([16, 0], np.int32), np.array([31, 17], np.int32)),
              displayWindow=(np.array([0, 0], np.int32), np.array([31, 17], np.int32)))
    [result] = prepare(shot)
    grey = decoded_grey(shot / "depth.mp4")
    assert grey[0, 9, 5] == 255 and grey[0, 9, 25] == 0           # 1 -> white, 3 -> black
    assert (grey[1, :, :16] == 0).all() and (grey[1, :, 16:] == 0).all()
    assert "mapped from EXR channel depth.Z" in result.videos["depth"]["encoding"]


def test_16_bit_png_keeps_its_precision_until_the_encode(project):
    from cosmoskit_dropfolder.prepare import prepare

    shot = project / "png16"
    frames(shot, "color.%04d.png", "rgb", n=2, size="64x36")
    # millimetres 1000..1255: a 256-value ramp that 8-bit reduction (v/257) would flatten to two grey levels
    ramp = (1000 + np.arange(64 * 36) // 9).reshape(36, 64).astype(np.uint16)
    write_png16(shot / "depth.0001.png", ramp)
    with_sky = ramp.copy()
    with_sky[:, :8] = 0                                            # 0: no depth (sky)
    write_png16(shot / "depth.0002.png", with_sky)
    [result] = prepare(shot)
    grey = decoded_grey(shot / "depth.mp4")
    assert len(np.unique(grey[0])) > 200                            # the ramp's steps survive
    flat = grey[0].ravel().astype(int)
    assert (np.diff(flat) <= 0).all() and flat[0] == 255 and flat[-1] == 0   # farther (larger) is darker
    assert (grey[1, :, :8] == 0).all() and (grey[1, :, 8:] == grey[0, :, 8:]).all()  # one range for both frames
    assert any("depth.####.png: read as distance" in n for n in result.notes)


def test_inverse_depth_from_the_sidecar_or_the_option(project, cli):
    from cosmoskit_dropfolder.prepare import prepare

    shot = project / "inverse"
    frames(shot, "color.%04d.png", "rgb", n=1)
    write_png16(shot / "depth.0001.png", np.tile(np.array([[1000, 60000]], dtype=np.uint16).repeat(16, 1), (18, 1)))
    (shot / "cosmos.yaml").write_text("prompt: x\ndepth: inverse\n")
    [result] = prepare(shot)
    grey = decoded_grey(shot / "depth.mp4")
    assert (grey[0, 9, 5], grey[0, 9, 25]) == (0, 255)               # larger = nearer = white
    assert any("read as inverse depth" in n for n in result.notes)
    # the option wins over the sidecar; a change of mode encodes again
    done = cli("prepare", str(shot), "--depth", "distance", "--json")
    assert done.exit_code == 0, done
    assert done.json()["results"][0]["videos"]["depth"]["action"] == "encoded"
    grey = decoded_grey(shot / "depth.mp4")
    assert (grey[0, 9, 5], grey[0, 9, 25]) == (255, 0)
    bad = cli("prepare", str(shot), "--depth", "far")
    assert bad.exit_code != 0 and "--depth must be distance or inverse, not 'far'" in bad.stderr


def test_the_drop_folder_takes_exr_depth(project):
    configure(project, watch=FAST)
    shot = project / "drop" / "exr-shot"
    frames(shot, "color.%04d.png", "rgb", n=2)
    write_exr(shot / "depth.0001.exr", {"R": np.zeros((18, 32), np.float16), "depth.Z": halves(2, 8)})
    write_exr(shot / "depth.0002.exr", {"R": np.zeros((18, 32), np.float16), "depth.Z": halves(8, 2)})
    (shot / "cosmos.yaml").write_text("prompt: a street at night\nweights: {vis: 0.3, depth: 0.7}\n")
    (shot / "READY").write_text("")
    session = run_once()
    assert [e["folder"] for e in session.kinds("queued")] == ["exr-shot"], session.events
    runs, prompts, _ = ledger_state()
    assert len(runs) == 1 and set(prompts[0]["inputs"]) == {"rgb", "depth"}
    grey = decoded_grey(Path(prompts[0]["inputs"]["depth"]["path"]))
    assert grey[:, 9, 5].tolist() == [255, 0] and grey[:, 9, 25].tolist() == [0, 255]


def test_8_bit_depth_is_still_kept_exactly(project):
    """8-bit grey depth is a finished picture: it is not mapped again (test_prepare checks it bit for bit)."""
    from cosmoskit_dropfolder.prepare import prepare

    shot = project / "eight"
    frames(shot, "color.%04d.png", "rgb", n=2)
    frames(shot, "depth.%04d.png", "depth", n=2)
    [result] = prepare(shot)
    assert result.videos["depth"]["encoding"] == "H.264 lossless grey, full range"
    assert not any("read as distance" in n for n in result.notes)


def test_a_depth_exr_that_passes_the_header_check_but_cannot_be_decoded_is_named(project):
    from cosmoskit_dropfolder.prepare import PrepareError, prepare

    shot = project / "undecodable"
    frames(shot, "color.%04d.png", "rgb", n=2)
    write_exr(shot / "depth.0001.exr", {"Z": halves(2, 4)})
    path = write_exr(shot / "depth.0002.exr", {"Z": halves(2, 4)})
    data = bytearray(path.read_bytes())
    data[-20:] = b"\xff" * 20                       # the chunk is all there, its compressed bytes are not
    path.write_bytes(bytes(data))
    with pytest.raises(PrepareError) as info:
        prepare(shot)
    [line] = info.value.lines()
    assert line.startswith("depth.0002.exr: cannot be decoded (")
    assert not (shot / "depth.mp4").exists() and not (shot / "color.mp4").exists()


def test_help_does_not_load_the_exr_library(project):
    import sys

    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "cosmoskit", "prepare", "--help"], cwd=project,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-500:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"OpenEXR", "numpy", "cosmoskit_dropfolder.exr", "cosmoskit_dropfolder.depthsource"}
