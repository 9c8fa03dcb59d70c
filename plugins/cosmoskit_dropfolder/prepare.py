"""``cosmoskit prepare``: frame sequences -> ``color.mp4`` / ``depth.mp4`` / ``seg.mp4``.

Encoding (ffmpeg from the imageio-ffmpeg wheel, reading the frames itself):

- **RGB**: H.264 ``yuv420p``, CRF 16, converted with the BT.709 matrix to limited ("tv") range and
  tagged BT.709 / tv, so every decoder turns it back into the same RGB (an untagged file is read
  as BT.601 by some and BT.709 by others).
- **depth** (and edge), grey frames: H.264 *lossless* (``-qp 0``), full ("pc") range, tagged as such:
  grey level v is stored as luma v and decodes to RGB (v, v, v) bit for bit.  Limited range would
  squeeze 256 levels into 220.  8-bit grey depth is a finished picture, kept exactly.  *Measured*
  depth — OpenEXR, 16-bit grey PNG — is mapped to that picture first (``depthmap``: near = white,
  one range for the whole sequence), from its full precision to 8 bits once.  Colour depth frames
  take the seg path.
- **seg**: ``libx264rgb`` *lossless* in planar RGB: no YUV matrix, no chroma subsampling, so every
  flat label colour comes back exactly (a 4:2:0 encode bleeds colours across label edges).

Odd sizes are cropped by one column/row (4:2:0 needs even sizes), the same for every modality.
:func:`check` finds every problem of a folder (sidecar, layout, every frame of every shot) before
anything is encoded; :func:`prepare` encodes only when there is none.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosmoskit.api import CosmoskitError
from cosmoskit_dropfolder import depthmap, layout
from cosmoskit_dropfolder.layout import LABEL, OUTPUT_NAME, Checked, Problem, Sequence, Video

if TYPE_CHECKING:
    from cosmoskit_dropfolder.sidecar import Sidecar

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
        """Every problem, one line each (neighbouring frames with the same fault already share one)."""
        return [p.line(root) for p in self.problems]


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
        return str(round(fps))
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
def _plan(modality: str, facts: layout.ImageInfo, crop: str | None,
          measured: bool = False) -> tuple[list[str], list[str], str, list[str]]:
    """(filters, codec args, description, notes) for one modality; ``measured``: depth mapped to 8-bit grey first."""
    filters = [crop] if crop else []
    notes: list[str] = []
    grey = facts.channels in ("gray", "gray+alpha")
    if measured:
        filters += ["format=gray", "scale=out_range=full", "format=yuv420p",
                    "setparams=range=pc:colorspace=bt709:color_primaries=bt709:color_trc=bt709"]
        codec = ["-c:v", "libx264", "-preset", PRESET, "-qp", "0", "-pix_fmt", "yuv420p"]
        source = f"EXR channel {facts.channel}" if facts.channel else f"{facts.bit_depth}-bit PNG"
        return filters, codec, f"mapped from {source} to grey; H.264 lossless grey, full range", notes
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
    levels: bool = False  # also measure the grey levels (8-bit depth)
    facts: layout.ImageInfo | None = None
    depth_mode: str | None = None                 # measured depth: mapped with this mode before encoding
    depth_range: depthmap.DepthRange | None = None  # … and this range (set by _measure)


def _filter_path(path: Path) -> str:
    """A path inside a filtergraph option (``:`` and ``\\`` are special there)."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def _encode(folder: Path, out_dir: Path, jobs: list[_Job], fps: str, frames: int, size: tuple[int, int],
            verify: bool = True) -> dict[str, tuple[int, int] | None]:
    """Encode every job's frames in one ffmpeg process (one start-up, the modalities in parallel).

    Outputs are written to hidden temporary names and renamed into place only when all succeeded.
    Measured depth is mapped to grey frames in the work folder first (with the range ``_measure`` chose).
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
            ext = job.seq.ext
            if job.depth_range is not None and job.facts is not None:
                from cosmoskit_dropfolder import depthsource

                problems = depthsource.render(folder, job.seq, job.facts, job.depth_range, links)
                if problems:
                    raise PrepareError(folder, problems)
                ext = ".png"
            else:
                for i, (_, rel) in enumerate(job.seq.ordered()):
                    target = (folder / rel).resolve()
                    try:
                        os.symlink(target, links / f"{i:06d}{ext}")
                    except OSError:
                        shutil.copyfile(target, links / f"{i:06d}{ext}")
            cmd += ["-framerate", fps, "-start_number", "0", "-i", str(links / f"%06d{ext}")]
        # tiny frames: one thread each is faster than ffmpeg's thread start-up and hand-offs
        small = size[0] * size[1] * frames < 640 * 360 * 24
        threads = ["-threads", "1"] if small else []
        stats: dict[str, Path] = {}
        for k, (job, tmp_out) in enumerate(zip(jobs, tmp_outs, strict=True)):
            cmd += ["-map", f"{k}:v:0", "-frames:v", str(frames), "-vf", ",".join(job.filters), *job.codec, *threads,
                    "-an", "-sn", "-dn", "-movflags", "+faststart", "-f", "mp4", str(tmp_out)]
        for k, job in enumerate(jobs):
            if job.levels:
                stats[job.modality] = work / f"levels{k}.txt"
                cmd += ["-map", f"{k}:v:0", "-frames:v", str(frames), "-vf",
                        ",".join([*job.filters[:-1], "signalstats", "metadata=mode=print:file="
                                  + _filter_path(stats[job.modality])]), "-f", "null", "-"]
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        if proc.returncode != 0:
            raise PrepareError(folder, [_ffmpeg_problem(proc.stderr, jobs)])
        if verify:
            for job, tmp_out in zip(jobs, tmp_outs, strict=True):
                info = api.probe(tmp_out)
                if info.frames != frames or (info.width, info.height) != size:
                    raise PrepareError(folder, [Problem(job.seq.label, f"ffmpeg wrote {info.frames} frames of "
                                                                       f"{info.width}x{info.height}, expected {frames} "
                                                                       f"of {size[0]}x{size[1]}")])
        for job, tmp_out in zip(jobs, tmp_outs, strict=True):
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


# ---------------------------------------------------------------- checking a folder: every problem at once
@dataclass
class ShotPlan:
    """A shot that passed its checks, and how it will be encoded."""

    checked: Checked
    out_dir: Path
    rate: str               # ffmpeg's frame rate (``24``, ``30000/1001``)
    width: int              # after cropping to an even size
    height: int
    crop: str | None        # the crop filter, for odd sizes
    notes: list[str]


@dataclass
class Plan:
    """What :func:`check` found: every problem of the folder, or the shots ready to encode."""

    folder: Path
    sidecar: Sidecar                      # as far as it reads
    depth_mode: str                       # "distance" or "inverse" (measured depth)
    shots: list[ShotPlan]
    notes: list[str]
    problems: list[Problem]


def rate_and_size(c: Checked, fps: float | None, default_fps: float) -> tuple[str, int, int, str | None, list[str],
                                                                               list[Problem]]:
    """(rate, width, height, crop, notes, problems) of a checked shot: the frame rate and size it is encoded at."""
    notes: list[str] = []
    problems: list[Problem] = []
    has_frames = any(isinstance(s, Sequence) for s in c.shot.sources.values())
    videos = [s for s in c.shot.sources.values() if isinstance(s, Video)]
    if c.fps_from_video:
        if fps is not None and abs(fps - c.fps_from_video) > 0.01:
            if has_frames:
                problems.append(Problem(videos[0].rel, f"runs at {c.fps_from_video:g} fps but {fps:g} fps was asked "
                                                       f"for the frames; they must match"))
            else:
                notes.append(f"fps {fps:g} ignored: the videos run at {c.fps_from_video:g} fps")
        rate = c.fps_from_video
    else:
        rate = fps if fps is not None else default_fps
    width, height, crop = c.width, c.height, None
    if has_frames and (width % 2 or height % 2):
        if videos:
            problems.append(Problem(None, f"frames are {width}x{height}: H.264 needs an even size, and cropping "
                                          f"would no longer match the given videos"))
        else:
            width, height = width - width % 2, height - height % 2
            crop = f"crop={width}:{height}:0:0"
            notes.append(f"frames are {c.width}x{c.height}: cropped to {width}x{height} (H.264 4:2:0 needs an even "
                         f"size; the last column/row is dropped)")
    return fps_text(rate), width, height, crop, notes, problems


NO_TEXT = ("no prompt text: add cosmos.yaml (prompt: …) or prompt.txt to the folder, or set watch.prompt in "
           "cosmoskit.yaml")


def check(folder: Path, *, fps: float | None = None, default_fps: float = 24.0, shot: str | None = None,
          single: bool = False, sidecar_fps: bool = True, depth: str | None = None,
          require_text: bool = False) -> Plan:
    """Every problem of ``folder`` — its sidecar, its layout, every frame of every shot — without encoding.

    Raises only for a wrong request (no such folder, an unknown ``shot``, ``fps`` out of range); a
    problem of the folder's content is a line in ``Plan.problems``.  ``depth`` ("distance" or
    "inverse") overrides the sidecar's ``depth:``.  ``require_text``: a folder whose sidecar gives no
    prompt text is a problem too (the drop folder, when ``watch.prompt`` gives none either).
    """
    from cosmoskit_dropfolder import sidecar

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CosmoskitError(f"{folder}: no such folder")
    folder = folder.resolve()
    if fps is not None and not 1 <= fps <= 240:
        raise CosmoskitError(f"--fps must be from 1 to 240, not {fps:g}")
    if depth is not None and depth not in depthmap.MODES:
        raise CosmoskitError(f"--depth must be {' or '.join(depthmap.MODES)}, not {depth!r}")
    side, problems = sidecar.parse(folder)
    if require_text and not side.prompt_given:  # a prompt given but unreadable is a line of its own already
        problems.append(Problem(None, NO_TEXT))
    if fps is None and sidecar_fps:
        fps = side.fps
    depth_mode = depth or side.depth or "distance"
    found = layout.find_sources(folder, own_outputs(folder))
    # sub-folders prepare made for other shots are outputs, not sources
    notes = [n for n in found.notes if not any(n.startswith(f"ignored folder {s.name}/")
                                               for s in found.shots.values())]
    problems += found.problems
    shots = found.shots
    if not shots and not found.problems:
        problems.append(Problem(None, "no frames or videos (expected color.####.png, rgb_####.png, rgb/ depth/ seg/ "
                                      "folders, or color.mp4)"))
    if shot is not None:
        wanted = {k: s for k, s in shots.items() if k == shot.lower()}
        if not wanted:
            names = ", ".join(s.name or "(unnamed)" for s in shots.values())
            raise CosmoskitError(f"{folder}: no shot named {shot!r} (shots: {names})")
        shots = wanted
    elif len(shots) > 1 and single:
        names = ", ".join(s.name or "(unnamed)" for s in shots.values())
        problems.append(Problem(None, f"holds {len(shots)} shots ({names}); put one shot per folder"))
    planned: list[ShotPlan] = []
    for s in shots.values():
        out_dir = folder if len(found.shots) == 1 or not s.name else folder / s.name
        result, shot_problems = layout.check_shot(folder, s)
        problems += shot_problems
        if result is None:
            continue
        rate, width, height, crop, shot_notes, rate_problems = rate_and_size(result, fps, default_fps)
        problems += rate_problems
        planned.append(ShotPlan(result, out_dir, rate, width, height, crop, result.notes + shot_notes))
    return Plan(folder, side, depth_mode, planned, notes, problems)


# ---------------------------------------------------------------- the command's work
def prepare(folder: Path, *, fps: float | None = None, default_fps: float = 24.0, shot: str | None = None,
            force: bool = False, single: bool = False, sidecar_fps: bool = True, verify: bool = True,
            log: Callable[[str], None] | None = None, depth: str | None = None,
            require_text: bool = False) -> list[Result]:
    """Check every shot of ``folder`` and encode what needs encoding; raise PrepareError listing all problems.

    The sidecar's problems are among them even when ``sidecar_fps`` is false (the watcher reads the
    sidecar itself, and relies on this to refuse a folder whose sidecar it could only partly read).
    ``verify`` probes each new video (frames and size); the watcher leaves it to ``describe_inputs``.
    """
    plan = check(folder, fps=fps, default_fps=default_fps, shot=shot, single=single, sidecar_fps=sidecar_fps,
                 depth=depth, require_text=require_text)
    if plan.problems:
        raise PrepareError(plan.folder, plan.problems)
    work = [_jobs(plan, sp, force) for sp in plan.shots]
    # Measured depth: every frame is decoded to choose its range, before anything is written, so a frame
    # that cannot be decoded is reported with all the others.
    problems: list[Problem] = []
    for _, jobs, _ in work:
        for job in jobs:
            problems += _measure(plan.folder, job)
    if problems:
        raise PrepareError(plan.folder, problems)
    return [_encode_shot(plan, sp, jobs, planned, log, verify) for sp, jobs, planned in work]


def _measure(folder: Path, job: _Job) -> list[Problem]:
    if job.depth_mode is None or job.facts is None:
        return []
    from cosmoskit_dropfolder import depthsource

    job.depth_range, problems = depthsource.measure(folder, job.seq, job.facts, job.depth_mode)
    return problems


def _jobs(plan: Plan, sp: ShotPlan, force: bool) -> tuple[ShotPlan, list[_Job], dict[str, tuple[str, str, bool]]]:
    """What of a shot needs encoding: (shot, jobs, modality -> (fingerprint, description, up to date))."""
    from cosmoskit_dropfolder import depthsource

    c = sp.checked
    manifest = read_manifest(sp.out_dir)
    jobs: list[_Job] = []
    planned: dict[str, tuple[str, str, bool]] = {}
    for modality, seq in c.shot.sources.items():
        if not isinstance(seq, Sequence):
            continue
        facts = c.info[modality]
        measured = modality == "depth" and depthsource.is_measured(seq, facts)
        filters, codec, described, plan_notes = _plan(modality, facts, sp.crop, measured)
        sp.notes += plan_notes
        settings = " ".join(filters + codec)
        if measured:
            settings += f" depthmap v{depthmap.VERSION} {plan.depth_mode} {depthmap.LOW}-{depthmap.HIGH}"
        fingerprint = _fingerprint(plan.folder, seq, sp.rate, settings)
        out_name = OUTPUT_NAME[modality]
        entry = (manifest.get("outputs") or {}).get(out_name) or {}
        target = sp.out_dir / out_name
        up_to_date = (not force and entry.get("fingerprint") == fingerprint and target.is_file()
                      and target.stat().st_size == entry.get("bytes"))
        planned[modality] = (fingerprint, described, up_to_date)
        if not up_to_date:
            grey_depth = modality == "depth" and not measured and facts.channels in ("gray", "gray+alpha")
            jobs.append(_Job(modality, seq, out_name, filters, codec, levels=grey_depth, facts=facts,
                             depth_mode=plan.depth_mode if measured else None))
    return sp, jobs, planned


def _encode_shot(plan: Plan, sp: ShotPlan, jobs: list[_Job], planned: dict[str, tuple[str, str, bool]],
                 log: Callable[[str], None] | None, verify: bool) -> Result:
    start = time.perf_counter()
    folder, c = plan.folder, sp.checked
    notes = list(plan.notes) + sp.notes
    sequences = {m: s for m, s in c.shot.sources.items() if isinstance(s, Sequence)}
    videos = {m: s for m, s in c.shot.sources.items() if isinstance(s, Video)}
    sp.out_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(sp.out_dir)
    manifest.setdefault("outputs", {})
    result_videos: dict[str, dict[str, Any]] = {}
    for modality, video in videos.items():
        result_videos[modality] = {"path": str(folder / video.rel), "source": video.rel, "action": "given"}
    if jobs:
        if log:
            log(f"encoding {', '.join(j.seq.label for j in jobs)} ({c.frames} frames at {sp.rate} fps)")
        levels = _encode(folder, sp.out_dir, jobs, sp.rate, c.frames, (sp.width, sp.height), verify=verify)
        for job in jobs:
            fingerprint, described, _ = planned[job.modality]
            rng = job.depth_range
            job_levels = levels.get(job.modality)
            manifest["outputs"][job.out_name] = {
                "modality": job.modality, "source": job.seq.label, "frames": c.frames, "fps": sp.rate,
                "fingerprint": fingerprint, "bytes": (sp.out_dir / job.out_name).stat().st_size, "encoding": described,
                "levels": list(job_levels) if job_levels else None,
                "depth_range": ({"mode": rng.mode, "near": rng.near, "far": rng.far, "valid": rng.valid,
                                 "sky": rng.sky} if rng else None)}
        _write_manifest(sp.out_dir, manifest)
    for modality, seq in sequences.items():
        out_name = OUTPUT_NAME[modality]
        _, described, up_to_date = planned[modality]
        entry = manifest["outputs"].get(out_name) or {}
        levels_seen = entry.get("levels")
        if levels_seen and levels_seen[1] - levels_seen[0] < 16:
            notes.append(f"depth uses only grey levels {levels_seen[0]}–{levels_seen[1]} of 0–255: normalise the "
                         f"depth when rendering, or the model sees an almost flat depth")
        if isinstance(entry.get("depth_range"), dict):
            try:
                notes.append(f"{seq.label}: {depthmap.DepthRange(**entry['depth_range']).describe()}")
            except (TypeError, ValueError):  # a manifest from another version: the note is all that is lost
                pass
        first, last = seq.ordered()[0][1], seq.ordered()[-1][1]
        result_videos[modality] = {"path": str(sp.out_dir / out_name), "source": f"{seq.label} ({first} … {last})",
                                   "action": "up to date" if up_to_date else "encoded", "encoding": described}
    return Result(sp.out_dir, c.shot.name, float(Fraction(sp.rate)), c.frames, sp.width, sp.height, result_videos,
                  notes, time.perf_counter() - start)
