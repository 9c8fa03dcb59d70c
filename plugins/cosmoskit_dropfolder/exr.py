"""OpenEXR depth frames: the header read in Python (for the checks), the pixels by the ``OpenEXR`` package.

The checks read only the header and the chunk table, here, in pure Python: that is fast, needs
no library, and a half-copied or unfinished file fails with a line that says so (the OpenEXR
library would print its own messages on stderr and raise something vaguer).  The pixels of the
chosen channel are decoded by the ``OpenEXR`` package, imported only then (it brings numpy), so
``cosmoskit --help`` and the checks of PNG-only folders never load it.

Which channel holds the depth is :func:`pick_depth_channel`, a pure function.
"""
from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cosmoskit_dropfolder.layout import ALIASES, BadFrame, ImageInfo

if TYPE_CHECKING:
    import numpy as np

MAGIC = b"\x76\x2f\x31\x01"
_TILED, _LONG_NAMES, _DEEP, _MULTIPART = 0x200, 0x400, 0x800, 0x1000
PIXEL_BITS = {0: 32, 1: 16, 2: 32}           # UINT, HALF, FLOAT
PIXEL_NAMES = {0: "uint", 1: "half", 2: "float"}
# Scan lines per chunk for each compression (OpenEXR's ImfCompression.h); others are checked by the library.
LINES_PER_CHUNK = {0: 1, 1: 1, 2: 1, 3: 16, 4: 32, 5: 16, 6: 32, 7: 32, 8: 32, 9: 256, 10: 256, 11: 32}

# Layer names that mean depth (``depth.Z``, ``ViewLayer.Depth.Z``, ``zdepth.R`` …): the drop folder's own
# depth names, Mantra's ``Pz``, and any name holding "depth" (V-Ray's ``VRayZDepth``, ``SceneDepth`` …).
DEPTH_LAYERS = frozenset(ALIASES["depth"]) | {"pz"}


def is_depth_name(name: str) -> bool:
    return name in DEPTH_LAYERS or "depth" in name


@dataclass(frozen=True)
class Part:
    """One part of an EXR file, as its header describes it."""

    channels: dict[str, tuple[int, int, int]]   # name -> (pixel type, x sampling, y sampling)
    data_window: tuple[int, int, int, int]       # xmin, ymin, xmax, ymax (inclusive)
    display_window: tuple[int, int, int, int]
    compression: int
    tiles: tuple[int, int, int] | None           # tile width, tile height, level mode; None = scan lines
    chunk_count: int | None                      # the chunkCount attribute (multi-part files)
    kind: str                                    # "scanlineimage", "tiledimage", "deepscanline" …


@dataclass(frozen=True)
class Header:
    parts: tuple[Part, ...]
    multipart: bool
    table_at: int                                # where the chunk offset tables start


def pick_depth_channel(names: Iterable[str]) -> tuple[str | None, str | None]:
    """(channel, problem) for a depth frame: which of ``names`` holds the depth.

    In order: ``Z``; a ``.Z`` channel of a depth layer (``depth.Z``, ``ViewLayer.Depth.Z``); a
    channel named for depth (``depth``, ``Pz``); the one ``.Z`` channel of any layer; a depth
    layer's ``R``/``Y``/``V``; then a grey picture's ``Y`` or ``V``, or ``R`` (grey saved as RGB).
    Two candidates of the same rank are a problem, not a guess.
    """
    names = list(names)

    def layer_and_last(name: str) -> tuple[str, str]:
        layer, _, last = name.rpartition(".")
        return layer.rsplit(".", 1)[-1].replace(" ", "_").lower(), last.lower()

    ranks: list[list[str]] = [
        [n for n in names if n.lower() == "z"],
        [n for n in names if layer_and_last(n)[1] == "z" and is_depth_name(layer_and_last(n)[0])],
        [n for n in names if "." not in n and is_depth_name(n.lower())],
        [n for n in names if layer_and_last(n)[1] == "z" and layer_and_last(n)[0]],
        [n for n in names if layer_and_last(n)[1] in ("r", "y", "v") and is_depth_name(layer_and_last(n)[0])],
        [n for n in names if n.lower() in ("y", "v")],
        [n for n in names if n.lower() == "r"],
    ]
    for found in ranks:
        if len(found) == 1:
            return found[0], None
        if len(found) > 1:
            return None, f"several depth channels ({', '.join(sorted(found))}); keep one"
    listed = ", ".join(sorted(names)) or "none"
    return None, f"no depth channel (channels: {listed}); cosmoskit reads Z, depth.Z, Y or R"


# ---------------------------------------------------------------- the header, in Python
class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def need(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise BadFrame(f"truncated (the file ends inside its {what})")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def cstring(self, what: str) -> str:
        end = self.data.find(b"\x00", self.pos, self.pos + 256)
        if end < 0:
            if len(self.data) - self.pos < 256:
                raise BadFrame(f"truncated (the file ends inside its {what})")
            raise BadFrame(f"damaged (a name in its {what} is too long)")
        text = self.data[self.pos:end].decode("latin-1")
        self.pos = end + 1
        return text


def _channels(value: bytes) -> dict[str, tuple[int, int, int]]:
    out: dict[str, tuple[int, int, int]] = {}
    r = _Reader(value, 0)
    while r.pos < len(value) and value[r.pos] != 0:
        name = r.cstring("channel list")
        ptype, _, xs, ys = struct.unpack("<iB3xii", r.need(16, "channel list"))
        if ptype not in PIXEL_BITS:
            raise BadFrame(f"damaged (channel {name} has an unknown pixel type {ptype})")
        out[name] = (ptype, xs, ys)
    return out


def parse_header(data: bytes) -> Header:
    """Every part's header; :class:`BadFrame` for a file that is not EXR, truncated or damaged."""
    if not data:
        raise BadFrame("empty file (a copy still running, or a failed render?)")
    if not data.startswith(MAGIC):
        raise BadFrame("not an OpenEXR file")
    r = _Reader(data, 4)
    (flags,) = struct.unpack("<I", r.need(4, "header"))
    if flags & 0xFF != 2:
        raise BadFrame(f"OpenEXR version {flags & 0xFF} is not supported (version 2 is)")
    multipart = bool(flags & _MULTIPART)
    parts: list[Part] = []
    while True:
        attrs: dict[str, tuple[str, bytes]] = {}
        while True:
            if r.pos >= len(data):
                raise BadFrame("truncated (the file ends inside its header)")
            if data[r.pos] == 0:
                r.pos += 1
                break
            name = r.cstring("header")
            kind = r.cstring("header")
            (size,) = struct.unpack("<i", r.need(4, "header"))
            if size < 0:
                raise BadFrame("damaged (invalid header)")
            attrs[name] = (kind, r.need(size, "header"))
        parts.append(_part(attrs, flags))
        if not multipart:
            break
        if r.pos < len(data) and data[r.pos] == 0:  # an empty header ends the list of parts
            r.pos += 1
            break
    return Header(tuple(parts), multipart, r.pos)


def _part(attrs: dict[str, tuple[str, bytes]], flags: int) -> Part:
    for required in ("channels", "compression", "dataWindow", "displayWindow"):
        if required not in attrs:
            raise BadFrame(f"damaged (its header has no {required})")
    try:
        channels = _channels(attrs["channels"][1])
        (compression,) = struct.unpack("<B", attrs["compression"][1][:1])
        data_window = struct.unpack("<iiii", attrs["dataWindow"][1][:16])
        display_window = struct.unpack("<iiii", attrs["displayWindow"][1][:16])
        tiles = None
        if "tiles" in attrs:
            tx, ty, mode = struct.unpack("<IIB", attrs["tiles"][1][:9])
            tiles = (tx, ty, mode & 0x0F)
        chunk_count = struct.unpack("<i", attrs["chunkCount"][1][:4])[0] if "chunkCount" in attrs else None
    except struct.error:
        raise BadFrame("damaged (invalid header)") from None
    kind = attrs["type"][1].rstrip(b"\x00").decode("latin-1") if "type" in attrs else (
        "deepscanline" if flags & _DEEP else "tiledimage" if flags & _TILED else "scanlineimage")
    if data_window[2] < data_window[0] or data_window[3] < data_window[1]:
        raise BadFrame("damaged (empty data window)")
    if display_window[2] < display_window[0] or display_window[3] < display_window[1]:
        raise BadFrame("damaged (empty display window)")
    return Part(channels, data_window, display_window, compression, tiles, chunk_count, kind)


def _chunks_in(part: Part) -> int | None:
    """How many chunks the part's offset table lists (None: a layout this check leaves to the library)."""
    if part.chunk_count is not None:
        return part.chunk_count
    width = part.data_window[2] - part.data_window[0] + 1
    height = part.data_window[3] - part.data_window[1] + 1
    if part.tiles is not None:
        tx, ty, mode = part.tiles
        if mode != 0 or tx <= 0 or ty <= 0:  # mip- and rip-maps: counted by the library
            return None
        return -(-width // tx) * -(-height // ty)
    lines = LINES_PER_CHUNK.get(part.compression)
    return None if lines is None else -(-height // lines)


def check_chunks(data: bytes, header: Header) -> None:
    """Every chunk the offset tables name lies inside the file: a truncated copy or an unfinished render fails."""
    counts = [_chunks_in(p) for p in header.parts]
    if any(c is None for c in counts):
        return
    pos = header.table_at
    total = sum(c for c in counts if c is not None)
    if pos + 8 * total > len(data):
        raise BadFrame("truncated (the file ends inside its chunk table)")
    offsets = struct.unpack(f"<{total}Q", data[pos:pos + 8 * total])
    first = 0
    for part_no, (part, count) in enumerate(zip(header.parts, counts, strict=True)):
        leader = (4 if header.multipart else 0) + (16 if part.tiles else 4)  # part number, tile or line numbers
        for k, offset in enumerate(offsets[first:first + (count or 0)]):
            where = f"chunk {k + 1} of {count}" + (f" of part {part_no}" if header.multipart else "")
            if offset == 0:
                raise BadFrame(f"incomplete (no {where}: the renderer did not finish writing it)")
            if offset + leader + 4 > len(data):
                raise BadFrame(f"truncated (the file ends before its {where})")
            if part.kind.startswith("deep"):
                continue
            (size,) = struct.unpack("<i", data[offset + leader:offset + leader + 4])
            if size < 0 or offset + leader + 4 + size > len(data):
                raise BadFrame(f"truncated (the file ends inside its {where})")
        first += count or 0


def read_info(data: bytes) -> ImageInfo:
    """Header facts of a depth EXR (size, depth channel); :class:`BadFrame` if it cannot be used."""
    header = parse_header(data)
    for part in header.parts:
        if part.kind.startswith("deep"):
            raise BadFrame("deep EXR is not supported (write a flat depth image)")
    check_chunks(data, header)
    names = [n for p in header.parts for n in p.channels]
    channel, problem = pick_depth_channel(names)
    if channel is None:
        raise BadFrame(str(problem))
    part = next(p for p in header.parts if channel in p.channels)
    ptype, xs, ys = part.channels[channel]
    if (xs, ys) != (1, 1):
        raise BadFrame(f"channel {channel} is subsampled ({xs}x{ys}); write the depth at full resolution")
    x0, y0, x1, y1 = part.display_window
    return ImageInfo(x1 - x0 + 1, y1 - y0 + 1, PIXEL_BITS[ptype], "gray", channel=channel,
                     sample=PIXEL_NAMES[ptype])


# ---------------------------------------------------------------- the pixels, by the OpenEXR package
def read_depth(path: str) -> np.ndarray:
    """The depth channel's values as float32 over the display window; pixels outside the data window are NaN.

    The file is checked as :func:`read_info` does first, so the library only sees complete files."""
    import io

    import numpy as np
    import OpenEXR

    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise BadFrame(f"cannot be read ({exc.strerror or exc})") from None
    channel = read_info(data).channel
    try:
        with OpenEXR.File(io.BytesIO(data), separate_channels=True) as f:
            for part in f.parts:
                if channel in part.channels:
                    values = np.array(part.channels[channel].pixels, dtype=np.float32)
                    header = part.header
                    (dx0, dy0), (dx1, dy1) = ((int(v) for v in corner) for corner in header["dataWindow"])
                    (vx0, vy0), (vx1, vy1) = ((int(v) for v in corner) for corner in header["displayWindow"])
                    break
            else:  # the header lists it (read_info chose it), so the library failed to decode its pixels
                raise BadFrame("cannot be decoded (damaged pixel data)")
    except BadFrame:
        raise
    except Exception as exc:  # the library's own errors (RuntimeError, ValueError …): the file is damaged
        raise BadFrame(f"cannot be decoded ({str(exc).strip() or type(exc).__name__})") from None
    if (dx0, dy0, dx1, dy1) == (vx0, vy0, vx1, vy1):
        return values
    # A cropped data window (renderers write only the region that holds pixels): the rest has no depth.
    out = np.full((vy1 - vy0 + 1, vx1 - vx0 + 1), np.nan, dtype=np.float32)
    x0, y0, x1, y1 = max(dx0, vx0), max(dy0, vy0), min(dx1, vx1), min(dy1, vy1)
    if x0 <= x1 and y0 <= y1:
        out[y0 - vy0:y1 - vy0 + 1, x0 - vx0:x1 - vx0 + 1] = values[y0 - dy0:y1 - dy0 + 1, x0 - dx0:x1 - dx0 + 1]
    return out
