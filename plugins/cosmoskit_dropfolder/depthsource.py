"""Reading measured depth frames (OpenEXR, 16-bit grey PNG) and writing the grey frames that get encoded.

Two passes over the sequence: the first samples every frame to choose one range for all of them
(:func:`depthmap.choose_range`), the second maps each frame with it and writes an 8-bit grey PNG
for the encoder.  No frame is held longer than it takes to map it, so a long 4K sequence needs no
more memory than one frame.  16-bit PNGs are decoded by ffmpeg (the imageio-ffmpeg binary: every
PNG filter and bit layout, fast) into 16-bit integers; EXR by the ``OpenEXR`` package.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cosmoskit_dropfolder import depthmap
from cosmoskit_dropfolder.layout import BadFrame, ImageInfo, Problem, Sequence

if TYPE_CHECKING:
    import numpy as np


def is_measured(seq: Sequence, info: ImageInfo) -> bool:
    """Depth that needs mapping: float EXR, or 16-bit grey PNG.  8-bit grey is a finished picture, kept as is."""
    return seq.ext == ".exr" or (info.bit_depth == 16 and info.channels in ("gray", "gray+alpha"))


def frames(folder: Path, seq: Sequence, info: ImageInfo) -> Iterator[tuple[str, np.ndarray | BadFrame]]:
    """(relative path, values or the reason it could not be read) for each frame, in order."""
    if seq.ext == ".exr":
        from cosmoskit_dropfolder import exr

        for _, rel in seq.ordered():
            try:
                yield rel, exr.read_depth(str(folder / rel))
            except BadFrame as exc:
                yield rel, exc
        return
    yield from _png16_frames(folder, seq, info)


def _png16_frames(folder: Path, seq: Sequence, info: ImageInfo) -> Iterator[tuple[str, np.ndarray | BadFrame]]:
    import numpy as np

    from cosmoskit import api

    ordered = seq.ordered()
    links = Path(tempfile.mkdtemp(prefix="cosmoskit-depth-"))
    try:
        for i, (_, rel) in enumerate(ordered):
            target = (folder / rel).resolve()
            try:
                os.symlink(target, links / f"{i:06d}.png")
            except OSError:
                shutil.copyfile(target, links / f"{i:06d}.png")
        # gray16le: the PNG's 16-bit values exactly (PNG stores big-endian; ffmpeg swaps, never scales)
        cmd = [api.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "image2",
               "-start_number", "0", "-i", str(links / "%06d.png"), "-frames:v", str(len(ordered)),
               "-f", "rawvideo", "-pix_fmt", "gray16le", "-"]
        size = info.width * info.height * 2
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            done = 0
            for _, rel in ordered:
                data = proc.stdout.read(size)
                if len(data) < size:
                    break
                done += 1
                yield rel, np.frombuffer(data, dtype="<u2").reshape(info.height, info.width)
            proc.stdout.close()
            err = proc.stderr.read().decode(errors="replace").strip().splitlines()
            proc.wait()
        for _, rel in ordered[done:]:
            yield rel, BadFrame(f"ffmpeg could not decode it ({err[-1] if err else 'no message'})")
    finally:
        shutil.rmtree(links, ignore_errors=True)


def measure(folder: Path, seq: Sequence, info: ImageInfo,
            mode: str) -> tuple[depthmap.DepthRange | None, list[Problem]]:
    """Pass one: the sequence's range, or the frames that could not be read (every one of them)."""
    samples = []
    problems: list[Problem] = []
    for rel, values in frames(folder, seq, info):
        if isinstance(values, BadFrame):
            problems.append(Problem(rel, str(values)))
        elif values.shape != (info.height, info.width):
            problems.append(Problem(rel, f"decodes as {values.shape[1]}x{values.shape[0]}, not "
                                         f"{info.width}x{info.height}"))
        else:
            samples.append(depthmap.sample(values))
    if problems:
        return None, problems
    return depthmap.choose_range(samples, mode), []


def render(folder: Path, seq: Sequence, info: ImageInfo, rng: depthmap.DepthRange, out: Path) -> list[Problem]:
    """Pass two: each frame mapped with the sequence's range, as ``out/000000.png`` … (8-bit grey)."""
    problems: list[Problem] = []
    for i, (rel, values) in enumerate(frames(folder, seq, info)):
        if isinstance(values, BadFrame):
            problems.append(Problem(rel, str(values)))
            continue
        write_grey_png(out / f"{i:06d}.png", depthmap.to_grey(values, rng))
    return problems


def write_grey_png(path: Path, grey: np.ndarray) -> None:
    """An 8-bit grey PNG (filter 0, zlib level 1: written once, read once, by ffmpeg, a moment later)."""
    import numpy as np

    h, w = grey.shape
    rows = np.zeros((h, w + 1), dtype=np.uint8)
    rows[:, 1:] = grey

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + chunk(b"IEND", b""))
