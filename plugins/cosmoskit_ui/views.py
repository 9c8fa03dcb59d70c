"""Page models: what each page shows, built from a snapshot (no template logic beyond loops)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosmoskit import api
from cosmoskit.api import BatchRecord, PromptRecord, RunRecord
from cosmoskit_ui.files import VIDEO_SUFFIXES, rel_url
from cosmoskit_ui.progress import BatchLog
from cosmoskit_ui.snapshot import Snapshot

INPUT_ORDER = ("rgb", "vis", "edge", "depth", "seg", "keypoint")
LOG_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class Video:
    label: str
    src: str | None  # a URL the page may play (None: nothing to play)
    poster: str | None = None
    note: str = ""  # why there is nothing to play


@dataclass
class RunCard:
    run: RunRecord
    prompt: PromptRecord | None
    thumb: str | None
    main: str | None  # the main output's URL (video or text)

    @property
    def id(self) -> str:
        return self.run["id"]


def main_output(run: RunRecord) -> str | None:
    """The run's main output path (relative to the home), by operation (any video if the operation is new)."""
    outputs = run.get("outputs") or {}
    for name in ("output.mp4", "upscaled.mp4", "enhanced_prompt.txt"):
        if name in outputs:
            return outputs[name]
    videos = [v for k, v in outputs.items() if Path(k).suffix in VIDEO_SUFFIXES and "_input_control" not in k]
    return videos[0] if videos else None


def card(home: Path, snap: Snapshot, run: RunRecord) -> RunCard:
    main = main_output(run) if run["status"] == "completed" else None
    # only outputs on disk get a thumbnail (a lost output shows as such, not as a broken image)
    video = main is not None and Path(main).suffix in VIDEO_SUFFIXES and (home / main).is_file()
    thumb = f"/media/run/{run['id']}/thumb.jpg" if video else None
    return RunCard(run, snap.prompts.get(run.get("prompt_id") or ""), thumb, rel_url(home, main) if main else None)


def input_video(home: Path, prompt: PromptRecord, key: str) -> Video:
    """A prompt's input: played from the home, or as a preview made in the home when it lives elsewhere."""
    record = prompt["inputs"].get(key)
    if record is None:
        return Video(key, None, note="none")
    path = Path(record["path"])
    poster = f"/media/prompt/{prompt['id']}/{key}/thumb.jpg"
    if not path.exists():
        return Video(key, None, note=f"missing: {path}")
    direct = rel_url(home, path)
    return Video(key, direct or f"/media/prompt/{prompt['id']}/{key}/preview.mp4", poster,
                 "" if direct else "preview (the file is outside the project home)")


def prompt_inputs(home: Path, prompt: PromptRecord | None) -> list[Video]:
    if prompt is None:
        return []
    keys = sorted(prompt["inputs"], key=lambda k: INPUT_ORDER.index(k) if k in INPUT_ORDER else 99)
    return [input_video(home, prompt, k) for k in keys]


def run_videos(home: Path, run: RunRecord, label: str | None = None) -> list[Video]:
    """A run's own videos: the model's generated controls, then its output."""
    outputs = run.get("outputs") or {}
    found = []
    for name, rel in sorted(outputs.items()):
        if "_input_control" in name and Path(name).suffix in VIDEO_SUFFIXES:
            found.append(Video(f"{name.split('_input_control')[0]} (generated)", rel_url(home, rel),
                               f"/media/run/{run['id']}/{name}/thumb.jpg"))
    main = main_output(run)
    if main and Path(main).suffix in VIDEO_SUFFIXES:
        found.append(Video(label or Path(main).name, rel_url(home, main), f"/media/run/{run['id']}/thumb.jpg"))
    return found


def read_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> str | None:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - limit))
            data = fh.read()
    except OSError:
        return None
    text = data.decode("utf-8", "replace")
    return text if size <= limit else "…\n" + text.split("\n", 1)[-1]


@dataclass
class RunDetail:
    run: RunRecord
    prompt: PromptRecord | None
    batch: BatchRecord | None
    inputs: list[Video]
    own: list[Video]  # generated controls and the output
    upscales: list[tuple[RunRecord, list[Video]]] = field(default_factory=list)
    source: tuple[RunRecord, list[Video]] | None = None  # an upscale's source run
    enhanced: PromptRecord | None = None  # the prompt an enhance made
    enhanced_text: str | None = None
    log: str | None = None
    log_live: bool = False  # the log streams (the run is in a running batch)
    folder: str = ""

    @property
    def side_by_side(self) -> list[Video]:
        """Input and controls, an upscale's source, the run's own videos, then its upscales: one synced row."""
        out = list(self.inputs) + (self.source[1] if self.source else []) + list(self.own)
        for _, videos in self.upscales:
            out += videos
        return out


def run_detail(home: Path, snap: Snapshot, run: RunRecord, batch: BatchRecord | None,
               live: BatchLog | None) -> RunDetail:
    prompt = snap.prompts.get(run.get("prompt_id") or "")
    detail = RunDetail(run, prompt, batch, prompt_inputs(home, prompt), run_videos(home, run))
    for uid in snap.upscales.get(run["id"], []):
        up = snap.by_id.get(uid)
        if up is not None:
            detail.upscales.append((up, run_videos(home, up, f"upscale {uid[:11]}")))
    parent = run.get("parent_run")
    if parent and parent in snap.by_id:
        source = snap.by_id[parent]
        detail.source = (source, run_videos(home, source, f"source {parent[:11]}"))
    if run["operation"] == "enhance":
        result = run.get("result_prompt")
        detail.enhanced = snap.prompts.get(result) if result else None
        text = (run.get("outputs") or {}).get("enhanced_prompt.txt")
        detail.enhanced_text = read_tail(home / text) if text else None
    folder = api.run_folder(home, run["id"])
    detail.folder = str(folder)
    detail.log_live = live is not None and not live.finished and run["status"] in ("running", "fetching", "staging")
    if not detail.log_live:
        detail.log = read_tail(folder / "logs" / "run.log")
    return detail


@dataclass
class LiveRun:
    run: RunRecord | None
    run_id: str
    line: int
    chunk: int = 0
    chunks: int = 0
    done: bool = False
    current: bool = False

    @property
    def percent(self) -> int:
        if self.done:
            return 100
        if not self.chunks:
            return 0
        return int(100 * max(0, self.chunk - 1) / self.chunks)


@dataclass
class LiveBatch:
    batch: BatchRecord
    runs: list[LiveRun]
    loaded: bool
    error: str | None
    lines: int


def live_batches(snap: Snapshot, board: Any) -> dict[str, list[LiveBatch]]:
    """Active batches by executor, each run with its chunk progress."""
    out: dict[str, list[LiveBatch]] = {}
    for batch in sorted(snap.active_batches, key=lambda b: b.get("created") or ""):
        log = board.get(batch["id"])
        state = log.snapshot() if log is not None else BatchLog(batch["id"]).snapshot()
        runs = []
        for k, rid in enumerate(batch["runs"]):
            p = state.runs.get(k)
            runs.append(LiveRun(snap.by_id.get(rid), rid, k, p.chunk if p else 0, p.chunks if p else 0,
                                bool(p and p.done), k == state.current))
        out.setdefault(batch["executor"], []).append(LiveBatch(batch, runs, state.loaded, state.error, state.lines))
    return out
