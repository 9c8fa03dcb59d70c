"""``cosmoskit prepare``: frame sequences -> ``color.mp4`` / ``depth.mp4`` / ``seg.mp4``.

Encoding (ffmpeg from the imageio-ffmpeg wheel, reading the frames itself):

- **RGB**: H.264 ``yuv420p``, CRF 16, converted with the BT.709 matrix to limited ("tv") range and
  tagged BT.709 / tv, so every decoder turns it back into the same RGB (an untagged file is read
  as BT.601 by some and BT.709 by others).
- **depth** (and edge), grey frames: H.264 *lossless* (``-qp 0``), full ("pc") range, tagged as such:
  grey level v is stored as luma v and decodes to RGB (v, v, v) bit for bit.  Limited range would
  squeeze 256 levels into 220.  16-bit depth is reduced to 8 bits (v/257): the model reads 8-bit
  video.  Colour depth frames take the seg path.
- **seg**: ``libx264rgb`` *lossless* in planar RGB: no YUV matrix, no chroma subsampling, so every
  flat label colour comes back exactly (a 4:2:0 encode bleeds colours across label edges).

Odd sizes are cropped by one column/row (4:2:0 needs even sizes), the same for every modality.
A manifest (``.cosmoskit-prepare.json``) remembers what was encoded from what, so running
prepare again on unchanged frames does nothing, and changed frames are encoded again.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

from cosmoskit.api import CosmoskitError

from cosmoskit_dropfolder import layout
from cosmoskit_dropfolder.layout import LABEL, OUTPUT_NAME, Checked, Problem, Sequence, Video

MANIFEST = ".cosmoskit-prepare.json"
ENCODER_VERSION = 1  # bump when the settings below change: outputs made with older ones are re-encoded
RGB_CRF = 16
PRESET = "medium"


class PrepareError(CosmoskitError):
    """Problems found before (or while) encoding; ``problems`` holds one line each."""

    def __init__(self, folder: Path, problems: list[Problem]) -> None:
        self.folder = folder
        self.problems = problems
        first = problems[0].line() if problems else "unknown problem"
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{folder}: {first}{more}; nothing was encoded", input_problem=True)

    def lines(self, root: str | None = None) -> list[str]:
        out = [p.line(root) for p in self.problems[: layout.MAX_PROBLEMS]]
        if len(self.problems) > layout.MAX_PROBLEMS:
            out.append(f"… and {len(self.problems) - layout.MAX_PROBLEMS} more problems")
        return out


@dataclass
class Result:
    folder: Path
    shot: str
    fps: float
    frames: int
    width: int
    height: int
    videos: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "shot": self.shot or None, "fps": self.fps, "frames": self.frames,
                "width": self.width, "height": self.height, "videos": self.videos, "notes": self.notes,
                "seconds": round(self.seconds, 3)}


def fps_text(fps: float) -> str:
    """ffmpeg's rate for ``fps``: exact for 24/25/30, NTSC rates as 24000/1001 …"""
    if abs(fps - round(fps)) < 1e-6:
        return str(int(round(fps)))
    for base in (24, 30, 60, 120):
        if abs(fps - base * 1000 / 1001) < 0.005:
            return f"{base * 1000}/1001"
    frac = Fraction(fps).limit_denominator(1001)
    return f"{frac.numerator}/{frac.denominator}"


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / MANIFEST).read_text())
        return data if isinstance(data, dict) and isinstance(data.get("outputs"), dict) else {"outputs": {}}
    except (OSError, ValueError):
        return {"outputs": {}}


def own_outputs(folder: Path) -> set[str]:
    """Videos prepare wrote in this folder (they are outputs, not the user's sources)."""
    return set(read_manifest(folder)["outputs"])


def _write_manifest(folder: Path, data: dict[str, Any]) -> None:
    tmp = folder / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, folder / MANIFEST)


# ---------------------------------------------------------------- encoding plans
def _plan(modality: str, facts: layout.ImageInfo, crop: str | None) -> tuple[list[str], list[str], str, list[str]]:
    """(filters, codec args, description, notes) for one modality."""
    filters = [crop] if crop else []
    notes: list[str] = []
    grey = facts.channels in ("gray", "gray+alpha")
    if modality == "rgb":
        if facts.channels in ("rgba", "gray+alpha"):
            notes.append("RGB frames have an alpha channel: it is dropped (the model reads RGB)")
        filters += ["scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+accurate_rnd+full_chroma_int",
                    "format=yuv420p",
                    "setparams=range=tv:colorspace=bt709:color_primaries=bt709:color_trc=bt709"]
        codec = ["-c:v", "libx264", "-preset", PRESET, "-crf", str(RGB_CRF), "-pix_fmt", "yuv420p"]
        return filters, codec, f"H.264 yuv420p BT.709 tv range, CRF {RGB_CRF}", notes
    if modality in ("depth", "edge") and grey:
        if facts.bit_depth == 16:
            notes.append(f"{LABEL[modality]} frames are 16-bit: reduced to 8 bits (value/257), as the model reads "
                         f"8-bit video")
        filters += ["format=gray", "scale=out_range=full", "format=yuv420p",
                    "setparams=range=pc:colorspace=bt709:color_primaries=bt709:color_trc=bt709"]
        codec = ["-c:v", "libx264", "-preset", PRESET, "-qp", "0", "-pix_fmt", "yuv420p"]
        return filters, codec, "H.264 lossless grey, full range", notes
    if modality in ("depth", "edge"):
        notes.append(f"{LABEL[modality]} frames are colour ({facts.channels}): kept exactly as they are, but "
                     f"Cosmos expects grey {LABEL[modality]}")
    if facts.bit_depth == 16:
        notes.append(f"{LABEL[modality]} frames are 16-bit: reduced to 8 bits per channel")
    if facts.channels in ("rgba", "gray+alpha"):
        notes.append(f"{LABEL[modality]} frames have an alpha channel: it is dropped")
    filters += ["format=gbrp"]
    codec = ["-c:v", "libx264rgb", "-preset", PRESET, "-qp", "0", "-pix_fmt", "gbrp"]
    return filters, codec, "H.264 lossless RGB (exact colours)", notes


def _fingerprint(folder: Path, seq: Sequence, fps: str, settings: str) -> str:
    digest = hashlib.sha256(f"{ENCODER_VERSION}\n{fps}\n{settings}\n".encode())
    for _, rel in seq.ordered():
        st = (folder / rel).stat()
        digest.update(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@dataclass
class _Job:
    modality: str
    seq: Sequence
    out_name: str
    filters: list[str]
    codec: list[str]
    levels: bool = False  # also measure the grey levels (depth)


def _filter_path(path: Path) -> str:
    """A path inside a filtergraph option (``:`` and ``\\`` are special there)."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def _encode(folder: Path, out_dir: Path, jobs: list[_Job], fps: str, frames: int, size: tuple[int, int],
            verify: bool = True) -> dict[str, tuple[int, int] | None]:
    """Encode every job's frames in one ffmpeg process (one start-up, the modalities in parallel).

    Outputs are written to hidden temporary names and renamed into place only when all succeeded.
    Returns the grey levels measured for jobs that asked for them.
    """
    from cosmoskit import api

    work = Path(tempfile.mkdtemp(prefix="cosmoskit-frames-"))
    tmp_outs = [out_dir / f"{layout.OWN_PREFIX}-tmp-{job.out_name}" for job in jobs]
    try:
        cmd = [api.ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        for k, job in enumerate(jobs):
            links = work / f"in{k}"
            links.mkdir()
            for i, (_, rel) in enumerate(job.seq.ordered()):
                target = (folder / rel).resolve()
                try:
                    os.symlink(target, links / f"{i:06d}{job.seq.ext}")
                except OSError:
                    shutil.copyfile(target, links / f"{i:06d}{job.seq.ext}")
            cmd += ["-framerate", fps, "-start_number", "0", "-i", str(links / f"%06d{job.seq.ext}")]
        # tiny frames: one thread each is faster than ffmpeg's thread start-up and hand-offs
        small = size[0] * size[1] * frames < 640 * 360 * 24
        threads = ["-threads", "1"] if small else []
        stats: dict[str, Path] = {}
        for k, (job, tmp_out) in enumerate(zip(jobs, tmp_outs)):
            cmd += ["-map", f"{k}:v:0", "-frames:v", str(frames), "-vf", ",".join(job.filters), *job.codec, *threads,
                    "-an", "-sn", "-dn", "-movflags", "+faststart", "-f", "mp4", str(tmp_out)]
        for k, job in enumerate(jobs):
            if job.levels:
                stats[job.modality] = work / f"levels{k}.txt"
                cmd += ["-map", f"{k}:v:0", "-frames:v", str(frames), "-vf",
                        ",".join(job.filters[:-1] + ["signalstats", "metadata=mode=print:file="
                                                     + _filter_path(stats[job.modality])]), "-f", "null", "-"]
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        if proc.returncode != 0:
            raise PrepareError(folder, [_ffmpeg_problem(proc.stderr, jobs)])
        if verify:
            for job, tmp_out in zip(jobs, tmp_outs):
                info = api.probe(tmp_out)
                if info.frames != frames or (info.width, info.height) != size:
                    raise PrepareError(folder, [Problem(job.seq.label, f"ffmpeg wrote {info.frames} frames of "
                                                                       f"{info.width}x{info.height}, expected {frames} "
                                                                       f"of {size[0]}x{size[1]}")])
        for job, tmp_out in zip(jobs, tmp_outs):
            os.replace(tmp_out, out_dir / job.out_name)
        levels: dict[str, tuple[int, int] | None] = {}
        for modality, path in stats.items():
            text = path.read_text(errors="replace") if path.exists() else ""
            lows = [int(v) for v in re.findall(r"signalstats\.YMIN=(\d+)", text)]
            highs = [int(v) for v in re.findall(r"signalstats\.YMAX=(\d+)", text)]
            levels[modality] = (min(lows), max(highs)) if lows and highs else None
        return levels
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for tmp_out in tmp_outs:
            if tmp_out.exists():
                tmp_out.unlink()


def _ffmpeg_problem(stderr: str, jobs: list[_Job]) -> Problem:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else "no message"
    m = re.search(r"in(\d+)/(\d{6})\.\w+", stderr)
    if m and int(m.group(1)) < len(jobs):
        ordered = jobs[int(m.group(1))].seq.ordered()
        if int(m.group(2)) < len(ordered):
            return Problem(ordered[int(m.group(2))][1], f"ffmpeg could not read it ({last})")
    return Problem(", ".join(j.seq.label for j in jobs), f"ffmpeg failed: {last}")


# ---------------------------------------------------------------- the command's work
def prepare(folder: Path, *, fps: float | None = None, default_fps: float = 24.0, shot: str | None = None,
            force: bool = False, single: bool = False, sidecar_fps: bool = True, verify: bool = True,
            log: Callable[[str], None] | None = None) -> list[Result]:
    """Check every shot of ``folder`` and encode what needs encoding; raise PrepareError listing all problems.

    ``verify`` probes each new video (frames and size); the watcher leaves it to ``describe_inputs``.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CosmoskitError(f"{folder}: no such folder")
    folder = folder.resolve()
    if fps is None and sidecar_fps:
        from cosmoskit_dropfolder import sidecar

        try:
            fps = sidecar.read(folder).fps
        except sidecar.SidecarError as exc:
            raise PrepareError(folder, [Problem(None, str(exc))]) from None
    if fps is not None and not 1 <= fps <= 240:
        raise CosmoskitError(f"--fps must be from 1 to 240, not {fps:g}")
    found = layout.find_sources(folder, own_outputs(folder))
    # sub-folders prepare made for other shots are outputs, not sources
    found.notes = [n for n in found.notes if not any(n.startswith(f"ignored folder {s.name}/")
                                                        for s in found.shots.values())]
    if found.problems:
        raise PrepareError(folder, found.problems)
    shots = found.shots
    if not shots:
        raise PrepareError(folder, [Problem(None, "no frames or videos (expected color.####.png, rgb_####.png, "
                                                  "rgb/ depth/ seg/ folders, or color.mp4)")])
    if shot is not None:
        wanted = {k: s for k, s in shots.items() if k == shot.lower()}
        if not wanted:
            names = ", ".join(s.name or "(unnamed)" for s in shots.values())
            raise CosmoskitError(f"{folder}: no shot named {shot!r} (shots: {names})")
        shots = wanted
    elif len(shots) > 1 and single:
        names = ", ".join(s.name or "(unnamed)" for s in shots.values())
        raise PrepareError(folder, [Problem(None, f"holds {len(shots)} shots ({names}); put one shot per folder")])
    checked: list[tuple[Checked, Path]] = []
    problems: list[Problem] = []
    for s in shots.values():
        out_dir = folder if len(found.shots) == 1 or not s.name else folder / s.name
        result, shot_problems = layout.check_shot(folder, s)
        problems += shot_problems
        if result is not None:
            checked.append((result, out_dir))
    if problems:
        raise PrepareError(folder, problems)
    return [_prepare_shot(folder, c, out_dir, fps, default_fps, force, found.notes, log, verify)
            for c, out_dir in checked]


def _prepare_shot(folder: Path, c: Checked, out_dir: Path, fps: float | None, default_fps: float, force: bool,
                  notes: list[str], log: Callable[[str], None] | None, verify: bool) -> Result:
    start = time.perf_counter()
    notes = list(notes) + c.notes
    sequences = {m: s for m, s in c.shot.sources.items() if isinstance(s, Sequence)}
    videos = {m: s for m, s in c.shot.sources.items() if isinstance(s, Video)}
    if c.fps_from_video:
        if fps is not None and abs(fps - c.fps_from_video) > 0.01:
            if sequences:
                raise PrepareError(folder, [Problem(next(iter(videos.values())).rel,
                                                    f"runs at {c.fps_from_video:g} fps but {fps:g} fps was asked "
                                                    f"for the frames; they must match")])
            notes.append(f"fps {fps:g} ignored: the videos run at {c.fps_from_video:g} fps")
        rate = c.fps_from_video
    else:
        rate = fps if fps is not None else default_fps
    rate_text = fps_text(rate)
    width, height = c.width, c.height
    crop = None
    if sequences and (width % 2 or height % 2):
        if videos:
            raise PrepareError(folder, [Problem(None, f"frames are {width}x{height}: H.264 needs an even size, "
                                                      f"and cropping would no longer match the given videos")])
        width, height = width - width % 2, height - height % 2
        crop = f"crop={width}:{height}:0:0"
        notes.append(f"frames are {c.width}x{c.height}: cropped to {width}x{height} (H.264 4:2:0 needs an even "
                     f"size; the last column/row is dropped)")
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(out_dir)
    manifest.setdefault("outputs", {})
    result_videos: dict[str, dict[str, Any]] = {}
    for modality, video in videos.items():
        result_videos[modality] = {"path": str(folder / video.rel), "source": video.rel, "action": "given"}
    jobs: list[_Job] = []
    planned: dict[str, tuple[str, str, bool]] = {}  # modality -> (fingerprint, description, up to date)
    for modality, seq in sequences.items():
        out_name = OUTPUT_NAME[modality]
        filters, codec, described, plan_notes = _plan(modality, c.info[modality], crop)
        notes += plan_notes
        fingerprint = _fingerprint(folder, seq, rate_text, " ".join(filters + codec))
        entry = manifest["outputs"].get(out_name) or {}
        target = out_dir / out_name
        up_to_date = (not force and entry.get("fingerprint") == fingerprint and target.is_file()
                      and target.stat().st_size == entry.get("bytes"))
        planned[modality] = (fingerprint, described, up_to_date)
        if not up_to_date:
            grey_depth = modality == "depth" and c.info[modality].channels in ("gray", "gray+alpha")
            jobs.append(_Job(modality, seq, out_name, filters, codec, levels=grey_depth))
    if jobs:
        if log:
            log(f"encoding {', '.join(j.seq.label for j in jobs)} ({c.frames} frames at {rate_text} fps)")
        levels = _encode(folder, out_dir, jobs, rate_text, c.frames, (width, height), verify=verify)
        for job in jobs:
            fingerprint, described, _ = planned[job.modality]
            manifest["outputs"][job.out_name] = {
                "modality": job.modality, "source": job.seq.label, "frames": c.frames, "fps": rate_text,
                "fingerprint": fingerprint, "bytes": (out_dir / job.out_name).stat().st_size, "encoding": described,
                "levels": list(levels[job.modality]) if levels.get(job.modality) else None}
        _write_manifest(out_dir, manifest)
    for modality, seq in sequences.items():
        out_name = OUTPUT_NAME[modality]
        _, described, up_to_date = planned[modality]
        levels_seen = (manifest["outputs"].get(out_name) or {}).get("levels")
        if levels_seen and levels_seen[1] - levels_seen[0] < 16:
            notes.append(f"depth uses only grey levels {levels_seen[0]}–{levels_seen[1]} of 0–255: normalise the "
                         f"depth when rendering, or the model sees an almost flat depth")
        first, last = seq.ordered()[0][1], seq.ordered()[-1][1]
        result_videos[modality] = {"path": str(out_dir / out_name), "source": f"{seq.label} ({first} … {last})",
                                   "action": "up to date" if up_to_date else "encoded", "encoding": described}
    return Result(out_dir, c.shot.name, float(Fraction(rate_text)), c.frames, width, height, result_videos,
                  notes, time.perf_counter() - start)
