"""Tiny test videos and an independent ffmpeg-based reader, for tests/test_emulator.py."""

from __future__ import annotations

import re
import subprocess


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_video(path, width=64, height=36, frames=8, fps=30, source="testsrc2"):
    """Write a small H.264 mp4 made from an ffmpeg test pattern."""
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"{source}=size={width}x{height}:rate={fps}",
        "-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        str(path),
    ]
    subprocess.run(cmd, check=True)
    return str(path)


def read_video(path):
    """Decode every frame; return dict(width, height, fps, frames, comment)."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
        capture_output=True, check=True,
    )
    text = proc.stderr.decode("utf-8", "replace")
    head = text.split("Stream mapping")[0]
    stream = next(ln for ln in head.splitlines() if "Video:" in ln)
    size = re.search(r"Video: .*?, (\d+)x(\d+)", stream)
    fps = re.search(r"(\d+(?:\.\d+)?) fps", stream)
    frames = re.findall(r"frame=\s*(\d+)", text)
    comment = re.search(r"^\s*comment\s*:\s*(.*)$", head, re.M)
    codec = re.search(r"Video: (\w+)", stream)
    return {
        "width": int(size.group(1)),
        "height": int(size.group(2)),
        "fps": float(fps.group(1)),
        "frames": int(frames[-1]),
        "comment": comment.group(1).strip() if comment else None,
        "codec": codec.group(1),
    }
