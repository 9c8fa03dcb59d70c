"""Thumbnails, contact sheets and short previews with ffmpeg, reused across regenerations.

Every video shown in the report becomes, in one ffmpeg pass, three small files
under ``<out>/media/<key>/``: ``thumb.jpg`` (a middle frame, the video's
poster), ``sheet.jpg`` (a contact sheet: ``SHEET_FRAMES`` frames spread over
the whole video, in one strip) and ``preview.mp4`` (at most
``PREVIEW_SECONDS``, ``PREVIEW_WIDTH`` wide, H.264 with faststart, no audio).

``<out>/media/manifest.json`` remembers, per key, the source's signature (size
and modification time in nanoseconds, plus the recipe below): a source whose
signature is unchanged and whose files are all still there is not touched
again.  A new output written over an old one changes its mtime, so it is
regenerated.
"""
from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREVIEW_WIDTH = 384
PREVIEW_SECONDS = 10
SHEET_FRAMES = 6
SHEET_FRAME_WIDTH = 160
RECIPE = f"r2-{PREVIEW_WIDTH}-{PREVIEW_SECONDS}-{SHEET_FRAMES}x{SHEET_FRAME_WIDTH}"
FILES = {"thumb": "thumb.jpg", "sheet": "sheet.jpg", "preview": "preview.mp4"}
MANIFEST = "manifest.json"


@dataclass
class Job:
    """One source video to turn into thumbnail, sheet and preview under ``media/<key>/``."""

    key: str
    src: Path
    frames: int | None = None  # a hint from the ledger; probed when absent or wrong
    # filled in by MediaCache.prepare / run
    sig: str | None = None
    state: str = "pending"  # pending | reused | made | missing | failed
    error: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # thumb/sheet/preview -> path relative to the report

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "src": str(self.src), "state": self.state, "error": self.error, "files": self.files}


def signature(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    return f"{st.st_size}:{st.st_mtime_ns}:{RECIPE}"


class MediaCache:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.root = out / "media"
        self.path = self.root / MANIFEST
        try:
            self.entries: dict[str, dict[str, Any]] = json.loads(self.path.read_text())["entries"]
        except (OSError, ValueError, KeyError, TypeError):
            self.entries = {}

    def rel_files(self, key: str) -> dict[str, str]:
        return {kind: f"media/{key}/{name}" for kind, name in FILES.items()}

    def prepare(self, job: Job) -> None:
        """Decide whether ``job`` is missing, reusable or to be made."""
        job.sig = signature(job.src)
        if job.sig is None:
            job.state, job.error = "missing", f"{job.src} does not exist"
            return
        entry = self.entries.get(job.key)
        if entry and entry.get("sig") == job.sig and entry.get("src") == str(job.src):
            if entry.get("error"):
                job.state, job.error = "failed", entry["error"]
                return
            files = self.rel_files(job.key)
            if all((self.out / rel).is_file() for rel in files.values()):
                job.state, job.files = "reused", files
                return
        job.state = "pending"

    def run(self, jobs: list[Job], workers: int | None = None) -> None:
        """Make every pending job's files, ``workers`` ffmpeg processes at a time; then save the manifest."""
        seen: dict[str, Job] = {}
        for job in jobs:
            if job.key in seen:  # the same source shown twice (an input used by several prompts)
                continue
            seen[job.key] = job
            self.prepare(job)
        todo = [j for j in seen.values() if j.state == "pending"]
        if todo:
            workers = max(1, workers or os.cpu_count() or 1)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(self._make, todo))
        for job in jobs:  # duplicates take the result of the first of their key
            first = seen[job.key]
            if first is not job:
                job.sig, job.state, job.error, job.files = first.sig, first.state, first.error, first.files
        for job in seen.values():
            if job.state in ("made", "reused"):
                self.entries[job.key] = {"src": str(job.src), "sig": job.sig}
            elif job.state == "failed":
                self.entries[job.key] = {"src": str(job.src), "sig": job.sig, "error": job.error}
        self.save()

    def prune_runs(self, keep: set[str]) -> int:
        """Forget and delete the media of runs not in ``keep`` (runs deleted from the ledger)."""
        import shutil

        gone = {k.split("/")[1] for k in self.entries if k.startswith("runs/")} - keep
        for key in [k for k in self.entries if k.startswith("runs/") and k.split("/")[1] in gone]:
            del self.entries[key]
        for run_id in gone:
            shutil.rmtree(self.root / "runs" / run_id, ignore_errors=True)
        return len(gone)

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"recipe": RECIPE, "entries": self.entries}, indent=0, sort_keys=True))
        os.replace(tmp, self.path)

    # ------------------------------------------------------------ ffmpeg
    def _make(self, job: Job) -> None:
        folder = self.root / job.key
        folder.mkdir(parents=True, exist_ok=True)
        try:
            frames = mp4_frames(job.src) or job.frames
            error = _encode(job.src, folder, frames) if frames else "unknown frame count"
            if error is not None:  # the count may be wrong (or not an MP4): ask ffmpeg, try once more
                error = _encode(job.src, folder, _probe_frames(job.src))
        except Exception as exc:  # a broken video must not stop the report
            error = str(exc) if exc.__class__.__name__ == "CosmoskitError" else f"{exc.__class__.__name__}: {exc}"
        if error:
            job.state, job.error = "failed", error
            return
        job.state, job.files = "made", self.rel_files(job.key)


def mp4_frames(path: Path) -> int | None:
    """Frames of the first video track of an MP4/MOV, read from its ``stsz`` box (no decoding, no process).

    None when the file is not an MP4 this understands (then the caller probes with ffmpeg).
    """
    import struct

    def boxes(fh: Any, start: int, end: int):
        pos = start
        while pos + 8 <= end:
            fh.seek(pos)
            head = fh.read(8)
            if len(head) < 8:
                return
            size, kind = struct.unpack(">I4s", head)
            header = 8
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0]
                header = 16
            elif size == 0:
                size = end - pos
            if size < header:
                return
            yield kind, pos + header, pos + size
            pos += size

    def find(fh: Any, start: int, end: int, path_: list[bytes]) -> tuple[int, int] | None:
        for kind, body, stop in boxes(fh, start, end):
            if kind == path_[0]:
                return (body, stop) if len(path_) == 1 else find(fh, body, stop, path_[1:])
        return None

    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, 2)
            moov = find(fh, 0, end, [b"moov"])
            if moov is None:
                return None
            for kind, body, stop in boxes(fh, *moov):
                if kind != b"trak":
                    continue
                hdlr = find(fh, body, stop, [b"mdia", b"hdlr"])
                if hdlr is None:
                    continue
                fh.seek(hdlr[0] + 8)  # version/flags, pre_defined
                if fh.read(4) != b"vide":
                    continue
                stsz = find(fh, body, stop, [b"mdia", b"minf", b"stbl", b"stsz"])
                if stsz is None:
                    return None
                fh.seek(stsz[0] + 8)  # version/flags, sample_size
                count = struct.unpack(">I", fh.read(4))[0]
                return count or None
    except (OSError, struct.error, RecursionError):
        return None
    return None


def _probe_frames(src: Path) -> int:
    from cosmoskit.api import probe

    return probe(src).frames


def _encode(src: Path, folder: Path, frames: int) -> str | None:
    """One ffmpeg pass writing the preview, the thumbnail and the contact sheet; an error text or None."""
    from cosmoskit.api import ffmpeg_exe

    frames = max(1, int(frames))
    count = min(SHEET_FRAMES, frames)
    picks = sorted({round(i * (frames - 1) / max(1, count - 1)) for i in range(count)})
    middle = min(frames - 1, frames // 2)
    tmp = {kind: folder / f".{name}.part{Path(name).suffix}" for kind, name in FILES.items()}
    pick = "+".join(f"eq(n\\,{i})" for i in picks)
    graph = (
        "[0:v]split=3[a][b][c];"
        f"[a]trim=duration={PREVIEW_SECONDS},setpts=PTS-STARTPTS,scale={PREVIEW_WIDTH}:-2[p];"
        f"[b]select='eq(n\\,{middle})',scale={PREVIEW_WIDTH}:-2[t];"
        f"[c]select='{pick}',scale={SHEET_FRAME_WIDTH}:-2,tile={len(picks)}x1[s]"
    )
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i", str(src),
        "-filter_complex", graph,
        "-map", "[p]", "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", str(tmp["preview"]),
        "-map", "[t]", "-frames:v", "1", "-q:v", "4", "-update", "1", str(tmp["thumb"]),
        "-map", "[s]", "-frames:v", "1", "-q:v", "4", "-update", "1", str(tmp["sheet"]),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    made = all(p.is_file() and p.stat().st_size > 0 for p in tmp.values())
    if proc.returncode != 0 or not made:
        for p in tmp.values():
            p.unlink(missing_ok=True)
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return (lines[-1] if lines else "ffmpeg made no output")[:300]
    for kind, name in FILES.items():
        os.replace(tmp[kind], folder / name)
    return None
