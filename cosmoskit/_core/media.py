"""Video facts from ffmpeg (the imageio-ffmpeg wheel, so no system install) and content hashes."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from cosmoskit._core.errors import CosmoskitError


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """The ffmpeg binary: ``IMAGEIO_FFMPEG_EXE``, else the one in the imageio-ffmpeg wheel."""
    env = os.environ.get("IMAGEIO_FFMPEG_EXE")
    if env:
        return env
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise CosmoskitError("imageio-ffmpeg is not installed", hint="pip install imageio-ffmpeg") from exc
    return str(imageio_ffmpeg.get_ffmpeg_exe())


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int
    codec: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


_STREAM = re.compile(r"Stream #\S+.*?: Video: (?P<codec>\w+).*?, (?P<w>\d{2,5})x(?P<h>\d{2,5})[, ]")
_FPS = re.compile(r"(?P<fps>[\d.]+) (?:fps|tbr)")
_FRAME = re.compile(r"frame=\s*(?P<n>\d+)")


def probe(path: Path) -> VideoInfo:
    """Frames, fps and size of a video; a clear error if ffmpeg cannot read it.

    Counting uses ``-c copy`` to a null muxer, so no frame is decoded and a
    long video costs little more than reading it.
    """
    path = Path(path)
    if not path.is_file():
        raise CosmoskitError(f"{path}: no such file")
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
        capture_output=True,
        text=True,
        errors="replace",
    )
    err = proc.stderr
    stream = _STREAM.search(err)
    if proc.returncode != 0 or stream is None:
        reason = _last_error_line(err) or "no video stream"
        raise CosmoskitError(f"{path}: not a readable video ({reason})")
    line = err[stream.start() :].splitlines()[0]
    fps_match = _FPS.search(line)
    frames = [int(m.group("n")) for m in _FRAME.finditer(err)]
    if not frames or frames[-1] == 0:
        raise CosmoskitError(f"{path}: the video has no frames")
    return VideoInfo(
        frames=frames[-1],
        fps=float(fps_match.group("fps")) if fps_match else 0.0,
        width=int(stream.group("w")),
        height=int(stream.group("h")),
        codec=stream.group("codec"),
    )


def check_video(
    path: Path,
    *,
    frames: int | None = None,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
) -> str | None:
    """Why a produced video cannot be called a result, or None.

    Every frame is decoded (a file cut short by a full disk or a dying process has a readable start and
    a broken end), and its frame count, size and rate must be what the model's contract predicts."""
    path = Path(path)
    try:
        info = probe(path)
    except CosmoskitError as exc:
        return exc.message
    proc = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
        capture_output=True,
        text=True,
        errors="replace",
    )
    if proc.returncode != 0 or proc.stderr.strip():
        return f"{path.name} does not decode ({_last_error_line(proc.stderr) or f'ffmpeg exit {proc.returncode}'})"
    if width is not None and height is not None and (info.width, info.height) != (width, height):
        return f"{path.name} is {info.width}x{info.height}, not the {width}x{height} the model makes"
    if frames is not None and info.frames != frames:
        return f"{path.name} has {info.frames} frames, not the {frames} the model makes from its input"
    if fps is not None and abs(info.fps - fps) > 0.01:
        return f"{path.name} runs at {info.fps:g} fps, not {fps:g}"
    return None


def _last_error_line(stderr: str) -> str:
    for line in reversed(stderr.strip().splitlines()):
        line = line.strip()
        if line and not line.startswith(("frame=", "video:", "[out#")):
            return line.split(": ", 1)[-1] if line.startswith(("/", ".")) else line
    return ""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def make_test_video(
    path: Path,
    *,
    width: int = 64,
    height: int = 36,
    frames: int = 8,
    fps: float = 24,
    source: str = "testsrc2",
    extra: list[str] | None = None,
) -> Path:
    """Encode a small synthetic clip with ffmpeg's lavfi sources (used by the demo and the tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"{source}{':' if '=' in source else '='}size={width}x{height}:rate={fps}",
        "-frames:v",
        str(frames),
        *(extra or []),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        str(path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CosmoskitError(f"ffmpeg could not make {path}: {proc.stderr.strip()[-300:]}")
    return path
