"""Finding the frame sequences of a render folder, and checking them before anything is encoded.

Layouts understood (one *shot* per folder, or several with a shot prefix):

- ``color.0001.png`` / ``depth.0001.png`` / ``segmentation.0001.png`` (Houdini style);
- ``rgb_0001.png``-style prefixes, with an optional shot name (``shotA_rgb_0001.png``);
- one subfolder per modality (``rgb/``, ``depth/``, ``seg/`` …) holding numbered frames;
- videos already named as ``prompts.find_inputs`` wants them (``color.mp4``, ``depth.mp4`` …).

Frames are PNG (8 or 16 bit) or JPEG; depth may also be OpenEXR (``exr.py``).

Every problem is one :class:`Problem`: the file (relative to the folder) and what is wrong.  Nothing
here stops at the first problem: a folder's checks find all of them, so one round of fixes is enough.
"""
from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from cosmoskit.api import CONTROL_NAMES, RGB_NAMES

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".exr")
DEPTH_ONLY_EXTS = (".exr",)  # measured depth; colour EXR would need a tone mapping nobody asked for
UNSUPPORTED_IMAGE_EXTS = (".tif", ".tiff", ".dpx", ".tga", ".bmp", ".hdr", ".webp", ".cin")
VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")

# What each modality becomes (a name prompts.find_inputs accepts).
OUTPUT_NAME = {"rgb": "color.mp4", "depth": "depth.mp4", "seg": "seg.mp4", "edge": "edge.mp4"}
LABEL = {"rgb": "RGB", "depth": "depth", "seg": "segmentation", "edge": "edge"}

# Names renderers use, matched on the last one to four words of a frame prefix or a subfolder name.
ALIASES: dict[str, tuple[str, ...]] = {
    "rgb": ("rgb", "rgba", "color", "colour", "beauty", "image", "img", "render", "frame", "frames", "ldr_color",
            "ldrcolor", "input", "main"),
    "depth": ("depth", "zdepth", "z_depth", "z", "depth_map", "depthmap", "distance_to_camera",
              "distance_to_image_plane"),
    "seg": ("seg", "segmentation", "semantic", "semantic_segmentation", "instance", "instance_segmentation",
            "instance_id_segmentation", "mask", "labels", "indexob", "object_index"),
    "edge": ("edge", "edges", "canny"),
}
_ALIAS = {alias: modality for modality, names in ALIASES.items() for alias in names}

# Files cosmoskit itself writes or reads beside the frames; never frames, never "unknown".
MARKER_NAMES = ("READY", "READY.txt", ".ready")
SIDECAR_NAMES = ("cosmos.yaml", "cosmos.yml", "prompt.txt")
OWN_NAMES = ("INGESTED.txt", "REJECTED.txt", ".cosmoskit-prepare.json")
OWN_PREFIX = ".cosmoskit"

_FRAME = re.compile(r"^(?P<prefix>.*?)(?P<num>\d+)(?P<ext>\.[A-Za-z0-9]+)$")
_SPLIT = re.compile(r"[._\-\s]+")


@dataclass(frozen=True)
class Problem:
    file: str | None  # relative to the folder; None for the folder itself
    text: str
    at: int | None = None  # a line of ``file`` (the sidecar), shown as ``file:line``

    def line(self, root: str | None = None) -> str:
        if self.file is None:
            return f"{root}: {self.text}" if root else self.text
        where = os.path.join(root, self.file) if root else self.file
        return f"{where}:{self.at}: {self.text}" if self.at is not None else f"{where}: {self.text}"


@dataclass
class Sequence:
    """Numbered frames of one modality."""

    modality: str
    label: str                      # e.g. ``color.####.png`` or ``rgb/####.png``
    frames: dict[int, list[str]]    # frame number -> relative paths (several = a duplicate number)
    ext: str
    shot: str = ""

    def ordered(self) -> list[tuple[int, str]]:
        return [(n, self.frames[n][0]) for n in sorted(self.frames)]


@dataclass
class Video:
    modality: str
    rel: str


@dataclass
class Shot:
    name: str
    sources: dict[str, Sequence | Video] = field(default_factory=dict)


@dataclass
class Found:
    shots: dict[str, Shot]
    notes: list[str]
    problems: list[Problem]


def modality_of(words: str) -> tuple[str | None, str]:
    """(modality, shot) from a frame prefix or folder name: ``shotA_color.`` -> ("rgb", "shotA")."""
    stripped = words.strip("._- ")
    tokens = [t for t in _SPLIT.split(stripped) if t]
    for k in (4, 3, 2, 1):
        if len(tokens) >= k:
            key = "_".join(tokens[-k:]).lower()
            if key in _ALIAS:
                return _ALIAS[key], "_".join(tokens[:-k])
    # CamelCase with no separator (``Image``, ``IndexOB``) was handled above; a bare number has no words
    return None, "_".join(tokens)


def is_own_file(name: str) -> bool:
    return name in MARKER_NAMES or name in SIDECAR_NAMES or name in OWN_NAMES or name.startswith(OWN_PREFIX)


def _video_modality(name: str) -> str | None:
    low = name.lower()
    if low in RGB_NAMES:
        return "rgb"
    for hint, names in CONTROL_NAMES.items():
        if low in names:
            return hint
    return None


def find_sources(folder: Path, own_outputs: Iterable[str] = ()) -> Found:
    """Group the folder's files into shots and modalities (no file is opened here)."""
    own_outputs = set(own_outputs)
    notes: list[str] = []
    problems: list[Problem] = []
    groups: dict[tuple[str, str | None, str], Sequence] = {}  # (shot key, modality, ext) at top level
    sub_sequences: list[Sequence] = []
    videos: list[Video] = []
    ignored_other: dict[str, int] = {}
    unsupported: dict[str, list[str]] = {}

    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        return Found({}, [], [Problem(None, f"cannot list the folder ({exc.strerror or exc})")])

    for entry in entries:
        name = entry.name
        if name.startswith(".") or is_own_file(name):
            continue
        if entry.is_dir(follow_symlinks=False):
            modality, _ = modality_of(name)
            if modality is None or modality_of(name)[1]:
                notes.append(f"ignored folder {name}/ (not a modality: rgb/, depth/, seg/ …)")
                continue
            seq = _sequence_in_subfolder(folder, name, modality, problems, notes)
            if seq is not None:
                sub_sequences.append(seq)
            continue
        suffix = os.path.splitext(name)[1].lower()
        if suffix in VIDEO_EXTS:
            if name in own_outputs:
                continue
            modality = _video_modality(name) if suffix == ".mp4" else None
            if modality is None:
                notes.append(f"ignored video {name} (cosmoskit reads color.mp4/rgb.mp4/input.mp4, depth.mp4, "
                              f"seg.mp4 …)")
            else:
                videos.append(Video(modality, name))
            continue
        m = _FRAME.match(name)
        if m is None or (suffix not in IMAGE_EXTS and suffix not in UNSUPPORTED_IMAGE_EXTS):
            if suffix in IMAGE_EXTS:
                notes.append(f"ignored {name} (not a numbered frame)")
            else:
                ignored_other[suffix or name] = ignored_other.get(suffix or name, 0) + 1
            continue
        if suffix in UNSUPPORTED_IMAGE_EXTS:
            unsupported.setdefault(suffix, []).append(name)
            continue
        modality, shot = modality_of(m.group("prefix"))
        key = (shot.lower(), modality, suffix)
        seq = groups.get(key)
        if seq is None:
            prefix = m.group("prefix")
            seq = groups[key] = Sequence(modality or "?", f"{prefix}####{m.group('ext')}", {}, suffix, shot)
        seq.frames.setdefault(int(m.group("num")), []).append(name)

    for suffix, names in unsupported.items():
        problems.append(_unsupported(names, suffix))
    if ignored_other:
        listed = ", ".join(f"{n} {k}" for k, n in sorted(ignored_other.items()))
        notes.append(f"ignored other files: {listed}")

    sequences = list(groups.values())
    unknown = [s for s in sequences if s.modality == "?"]
    known = [s for s in sequences if s.modality != "?"]
    if len(unknown) == 1 and not known and not sub_sequences and not any(v.modality == "rgb" for v in videos):
        only = unknown[0]
        only.modality, only.shot = "rgb", ""
        notes.append(f"{only.label} taken as the RGB sequence (the only one; name it color.####.png to be explicit)")
        known, unknown = [only], []
    for seq in unknown:
        notes.append(f"ignored sequence {seq.label} (not color/rgb, depth or seg; rename it to use it)")

    shots: dict[str, Shot] = {}

    def add(shot_name: str, modality: str, source: Sequence | Video, label: str) -> None:
        key = shot_name.lower()
        shot = shots.setdefault(key, Shot(shot_name))
        if modality in shot.sources:
            other = shot.sources[modality]
            other_label = other.label if isinstance(other, Sequence) else other.rel
            problems.append(Problem(label, f"a second {LABEL.get(modality, modality)} source beside {other_label}; "
                                           f"keep one"))
            return
        shot.sources[modality] = source

    for seq in known + sub_sequences:
        if seq.ext in DEPTH_ONLY_EXTS and seq.modality != "depth":
            problems.append(Problem(seq.label, f"{seq.ext[1:].upper()} frames are read for depth only; write the "
                                               f"{LABEL[seq.modality]} frames as PNG or JPEG"))
    for seq in known:
        # two extensions for one prefix are two groups: report it as such
        add(seq.shot, seq.modality, seq, seq.label)
    for seq in sub_sequences:
        add("", seq.modality, seq, seq.label)
    for video in videos:
        add("", video.modality, video, video.rel)
    return Found(shots, notes, problems)


def _sequence_in_subfolder(folder: Path, sub: str, modality: str, problems: list[Problem],
                           notes: list[str]) -> Sequence | None:
    groups: dict[tuple[str, str], Sequence] = {}
    unsupported: dict[str, list[str]] = {}
    try:
        names = sorted(e.name for e in os.scandir(folder / sub) if not e.name.startswith("."))
    except OSError as exc:
        problems.append(Problem(f"{sub}/", f"cannot list the folder ({exc.strerror or exc})"))
        return None
    for name in names:
        m = _FRAME.match(name)
        suffix = os.path.splitext(name)[1].lower()
        if suffix in UNSUPPORTED_IMAGE_EXTS and m:
            unsupported.setdefault(suffix, []).append(f"{sub}/{name}")
            continue
        if m is None or suffix not in IMAGE_EXTS:
            continue
        key = (m.group("prefix").lower(), suffix)
        seq = groups.get(key)
        if seq is None:
            seq = groups[key] = Sequence(modality, f"{sub}/{m.group('prefix')}####{m.group('ext')}", {}, suffix)
        seq.frames.setdefault(int(m.group("num")), []).append(f"{sub}/{name}")
    for suffix, rels in unsupported.items():
        problems.append(_unsupported(rels, suffix))
    if not groups:
        if not unsupported:
            notes.append(f"ignored folder {sub}/ (no numbered PNG, JPEG or EXR frames)")
        return None
    if len(groups) > 1:
        labels = ", ".join(s.label for s in groups.values())
        problems.append(Problem(f"{sub}/", f"holds several frame sequences ({labels}); keep one per folder"))
        return None
    return next(iter(groups.values()))


def _unsupported(rels: list[str], suffix: str) -> Problem:
    what = f"{suffix[1:].upper()} frames are not supported"
    if len(rels) > 1:
        what += f" ({len(rels)} files, {rels[0]} … {rels[-1]})"
    return Problem(rels[0] if len(rels) == 1 else None,
                   f"{what}; write PNG (16-bit PNG or OpenEXR for depth) or JPEG")


# ---------------------------------------------------------------- reading frame headers
@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    bit_depth: int
    channels: str  # "gray", "gray+alpha", "rgb", "rgba", "palette"
    channel: str = ""   # EXR: the channel that holds the depth (``Z``, ``depth.Z`` …)
    sample: str = ""    # EXR: "half", "float" or "uint"


_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR = {0: "gray", 2: "rgb", 3: "palette", 4: "gray+alpha", 6: "rgba"}


class BadFrame(Exception):
    pass


def read_png(data: bytes) -> ImageInfo:
    """Header facts of a PNG; every chunk's length and CRC checked, so truncated or damaged files fail."""
    if not data:
        raise BadFrame("empty file (a copy still running, or a failed render?)")
    if not data.startswith(_PNG_SIG):
        raise BadFrame("not a PNG file")
    pos, info, seen_idat, end = 8, None, False, len(data)
    while True:
        if pos + 8 > end:
            raise BadFrame("truncated (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        if pos + 12 + length > end:
            raise BadFrame(f"truncated (the file ends inside its {ctype.decode('latin-1')} chunk)")
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise BadFrame(f"damaged (checksum error in its {ctype.decode('latin-1')} chunk)")
        if info is None:
            if ctype != b"IHDR" or length != 13:
                raise BadFrame("damaged (no IHDR header)")
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            if w == 0 or h == 0 or colour not in _PNG_COLOUR:
                raise BadFrame("damaged (invalid IHDR header)")
            info = ImageInfo(w, h, depth, _PNG_COLOUR[colour])
        elif ctype == b"IDAT":
            seen_idat = True
        elif ctype == b"IEND":
            if not seen_idat:
                raise BadFrame("damaged (no image data)")
            return info
        pos += 12 + length


def read_jpeg(data: bytes) -> ImageInfo:
    if not data:
        raise BadFrame("empty file (a copy still running, or a failed render?)")
    if not data.startswith(b"\xff\xd8"):
        raise BadFrame("not a JPEG file")
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise BadFrame("truncated (no end-of-image marker)")
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            raise BadFrame("damaged (bad marker)")
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if pos + 10 > end:
                break
            precision, h, w, comps = struct.unpack(">BHHB", data[pos + 4:pos + 10])
            if w == 0 or h == 0:
                raise BadFrame("damaged (zero size)")
            return ImageInfo(w, h, precision, "gray" if comps == 1 else "rgb")
        if marker == 0xDA:
            break
        pos += 2 + length
    raise BadFrame("damaged (no frame header)")


def read_image(path: Path) -> ImageInfo:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadFrame(f"cannot be read ({exc.strerror or exc})") from None
    suffix = path.suffix.lower()
    if suffix == ".png":
        return read_png(data)
    if suffix == ".exr":
        from cosmoskit_dropfolder import exr

        return exr.read_info(data)
    return read_jpeg(data)


# ---------------------------------------------------------------- checks
@dataclass
class Checked:
    """A checked shot: what to encode and how (encoded only when its checks found no problem)."""

    shot: Shot
    frames: int
    width: int
    height: int
    fps_from_video: float | None
    info: dict[str, ImageInfo]            # modality -> header facts of its first frame (frame sources)
    notes: list[str]


def _frame_name(seq: Sequence, number: int, like: str) -> str:
    """A missing frame's name, padded as its neighbour is."""
    m = _FRAME.match(os.path.basename(like))
    digits = len(m.group("num")) if m else 4
    prefix = like[: len(like) - len(os.path.basename(like))] + (m.group("prefix") if m else "")
    return f"{prefix}{number:0{digits}d}{m.group('ext') if m else seq.ext}"


def check_shot(folder: Path, shot: Shot) -> tuple[Checked | None, list[Problem]]:
    """Equal counts, no gaps or duplicate numbers, every frame readable and of one size: every problem found.

    The shot comes back whenever its RGB count and size are known, problems or not, so that the checks
    that need them (the frame rate against a given video, odd sizes) still run and report too.
    """
    from cosmoskit import api
    from cosmoskit.api import CosmoskitError

    problems: list[Problem] = []
    notes: list[str] = []
    if "rgb" not in shot.sources:
        present = ", ".join(s.label if isinstance(s, Sequence) else s.rel for s in shot.sources.values())
        problems.append(Problem(None, "no RGB frames or video (expected color.####.png, rgb_####.png, rgb/ or "
                                      "color.mp4" + (f"; found only {present}" if present else "") + ")"))

    counts: dict[str, tuple[int, str]] = {}
    sizes: dict[str, tuple[int, int, str]] = {}
    info: dict[str, ImageInfo] = {}
    fps_from_video = None
    for modality, source in shot.sources.items():
        if isinstance(source, Video):
            try:
                v = api.probe(folder / source.rel)
            except CosmoskitError as exc:
                problems.append(Problem(source.rel, str(exc).split(": ", 1)[-1]))
                continue
            counts[modality] = (v.frames, source.rel)
            sizes[modality] = (v.width, v.height, source.rel)
            if modality == "rgb" or fps_from_video is None:
                fps_from_video = v.fps
            continue
        ordered = source.ordered()
        for number, rels in sorted(source.frames.items()):
            for rel in rels[1:]:
                problems.append(Problem(rel, f"frame {number} given twice (also {rels[0]})"))
        problems += gap_problems(source, LABEL[modality])
        counts[modality] = (len(ordered), f"{source.label} ({ordered[0][1]} … {ordered[-1][1]})")
        if source.ext in DEPTH_ONLY_EXTS and modality != "depth":
            continue  # refused as a whole by find_sources; its frames need no reading
        ref: tuple[ImageInfo, str] | None = None
        faults: list[tuple[int, str, str]] = []  # (index in order, file, what is wrong)
        for index, (_, rel) in enumerate(ordered):
            try:
                facts = read_image(folder / rel)
            except BadFrame as exc:
                faults.append((index, rel, str(exc)))
                continue
            if ref is None:
                ref = (facts, rel)
                info[modality] = facts
                sizes[modality] = (facts.width, facts.height, rel)
            elif (facts.width, facts.height) != (ref[0].width, ref[0].height):
                faults.append((index, rel, f"{facts.width}x{facts.height}, but {ref[1]} is "
                                           f"{ref[0].width}x{ref[0].height}; every frame must have one size"))
            elif (facts.channels, facts.bit_depth, facts.channel) != (ref[0].channels, ref[0].bit_depth,
                                                                      ref[0].channel):
                notes.append(f"{rel} is {_kind(facts)}, {ref[1]} is {_kind(ref[0])}")
        problems += merge_runs(faults)
    rgb = shot.sources.get("rgb")
    if "rgb" in counts:
        rgb_count, rgb_label = counts["rgb"]
        for modality, (count, label) in counts.items():
            source = shot.sources[modality]
            if modality == "rgb":
                continue
            if isinstance(source, Sequence) and isinstance(rgb, Sequence) and min(source.frames) == min(rgb.frames):
                # numbered alike: name the frames missing at the end or beyond the RGB's last
                problems += end_problems(source, rgb, LABEL[modality])
            elif count != rgb_count:
                problems.append(Problem(None, f"{label}: {count} {LABEL[modality]} frames, but the RGB {rgb_label} "
                                              f"has {rgb_count}; counts must be equal"))
    if "rgb" in sizes:
        rw, rh, rrel = sizes["rgb"]
        for modality, (w, h, rel) in sizes.items():
            if modality != "rgb" and (w, h) != (rw, rh):
                problems.append(Problem(rel, f"{LABEL[modality]} is {w}x{h}, but the RGB {rrel} is {rw}x{rh}"))
    starts = {m: min(s.frames) for m, s in shot.sources.items() if isinstance(s, Sequence) and s.frames}
    if len(set(starts.values())) > 1:
        notes.append("frame numbers start at " + ", ".join(f"{n} ({LABEL[m]})" for m, n in starts.items())
                     + "; frames are paired in order")
    if "rgb" not in sizes or "rgb" not in counts:
        return None, problems
    width, height, _ = sizes["rgb"]
    return Checked(shot, counts["rgb"][0], width, height, fps_from_video, info, notes), problems


def _kind(facts: ImageInfo) -> str:
    if facts.channel:
        return f"{facts.bit_depth}-bit {facts.sample or 'float'} (channel {facts.channel})"
    return f"{facts.bit_depth}-bit {facts.channels}"


# ---------------------------------------------------------------- the problem lines (pure)
def gap_problems(seq: Sequence, label: str) -> list[Problem]:
    """One line per run of missing frame numbers inside the sequence."""
    out: list[Problem] = []
    ordered = seq.ordered()
    for (a, rel_a), (b, rel_b) in pairwise(ordered):
        if b != a + 1:
            first, last = _frame_name(seq, a + 1, rel_a), _frame_name(seq, b - 1, rel_a)
            what = f"{first}: missing" if b - a == 2 else f"{first} … {last}: {b - a - 1} frames missing"
            out.append(Problem(None, f"{what} (the {label} frames jump from {rel_a} to {rel_b})"))
    return out


def end_problems(seq: Sequence, rgb: Sequence, label: str) -> list[Problem]:
    """Frames of ``seq`` missing after its last one, or beyond the RGB's last (both numbered from one start)."""
    out: list[Problem] = []
    last, rgb_last = max(seq.frames), max(rgb.frames)
    like, rgb_last_rel = seq.ordered()[-1][1], rgb.ordered()[-1][1]
    if last < rgb_last:
        first, final = _frame_name(seq, last + 1, like), _frame_name(seq, rgb_last, like)
        what = f"{first}: missing" if rgb_last - last == 1 else f"{first} … {final}: {rgb_last - last} frames missing"
        out.append(Problem(None, f"{what} (the RGB frames go on to {rgb_last_rel})"))
    beyond = [rel for n, rel in seq.ordered() if n > rgb_last]
    if len(beyond) == 1:
        out.append(Problem(beyond[0], f"a {label} frame beyond the last RGB frame {rgb_last_rel}"))
    elif beyond:
        out.append(Problem(None, f"{beyond[0]} … {beyond[-1]}: {len(beyond)} {label} frames beyond the last RGB "
                                 f"frame {rgb_last_rel}"))
    return out


def merge_runs(faults: list[tuple[int, str, str]]) -> list[Problem]:
    """One line per fault, except that neighbouring frames with the same fault share one line.

    ``faults`` are (position in the sequence, file, what is wrong).  Four hundred frames re-rendered
    at another size are one problem, not four hundred lines that bury the others.
    """
    out: list[Problem] = []
    run: list[tuple[int, str, str]] = []

    def flush() -> None:
        if len(run) == 1:
            out.append(Problem(run[0][1], run[0][2]))
        elif run:
            out.append(Problem(None, f"{run[0][1]} … {run[-1][1]}: {run[0][2]} ({len(run)} frames)"))
        run.clear()

    for fault in faults:
        if run and (fault[0] != run[-1][0] + 1 or fault[2] != run[-1][2]):
            flush()
        run.append(fault)
    flush()
    return out
