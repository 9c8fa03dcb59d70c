"""Build the report folder: pick prompts and runs from the ledger, make media, write index.html."""
from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cosmoskit.api import RUN_STATUSES, CosmoskitError
from cosmoskit_report.media import Job, MediaCache

STATIC = Path(__file__).parent / "static"
MAIN_OUTPUT = {"transfer": "output.mp4", "upscale": "upscaled.mp4", "enhance": "enhanced_prompt.txt"}
# A run folder's control videos, under each model's own names: Transfer 1 `<hint>_input_control.mp4`,
# Transfer 2.5 `<name>_control_<key>.mp4`, Cosmos 3 `control_<hint>.mp4`.
CONTROL_FILE = re.compile(r"^(?:(?P<t1>[a-z]+)_input_control|(?:.+_)?control_(?P<key>[a-z]+))\.mp4$")


def control_hint(name: str) -> str | None:
    """The control a run folder's file shows, or None when it is not a control video."""
    m = CONTROL_FILE.match(name)
    return (m.group("t1") or m.group("key")) if m else None
LOG_TAIL_BYTES = 256 * 1024
EMULATOR_MARK = "cosmos-emulator"


# ------------------------------------------------------------------ options
def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``2026-11-01``, ``2026-11-01T12:00[+02:00]`` (UTC when no zone),
    or a span ago: ``90m``, ``36h``, ``7d``, ``2w``."""
    if not text:
        return None
    now = now or datetime.now(UTC)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*", text)
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        return now - timedelta(**{unit: float(m.group(1))})
    try:
        when = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise CosmoskitError(
            f"--since {text!r}: not a date (2026-11-01, 2026-11-01T12:00) or a span (36h, 7d)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_statuses(values: list[str]) -> set[str]:
    wanted = {s.strip() for v in values for s in v.split(",") if s.strip()}
    unknown = wanted - set(RUN_STATUSES)
    if unknown:
        raise CosmoskitError(f"--status {', '.join(sorted(unknown))}: a status is one of {', '.join(RUN_STATUSES)}")
    return wanted


# ------------------------------------------------------------------ the model of the page
@dataclass
class RunView:
    run: dict[str, Any]
    main_name: str | None = None
    main: Job | None = None  # the output video's media
    main_missing: bool = False  # recorded (or expected) but not on disk
    main_link: str | None = None  # the original file, relative to the report
    controls: list[tuple[str, Job, str]] = field(default_factory=list)  # (hint, media, link)
    text_output: str | None = None  # enhance: the enhanced prompt
    emulator: bool = False
    log_link: str | None = None
    log_tail: str | None = None
    batch_size: int = 1
    duration: float | None = None
    upscales: list[RunView] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.run["id"]


@dataclass
class PromptView:
    prompt: dict[str, Any] | None  # None: runs of loose videos (upscale --video)
    inputs: list[tuple[str, Job | None, dict[str, Any]]] = field(default_factory=list)  # (key, media, record)
    units: list[RunView] = field(default_factory=list)  # transfers with their upscales, enhances, loose upscales
    children: list[PromptView] = field(default_factory=list)  # prompts enhanced from this one
    emulator: bool = False

    @property
    def id(self) -> str:
        return self.prompt["id"] if self.prompt else "no-prompt"


@dataclass
class Report:
    home: Path
    out: Path
    sections: list[PromptView]
    runs: list[RunView]
    summary: dict[str, Any]
    filters: dict[str, Any]
    generated: str
    controls: list[str]
    prompts: dict[str, dict[str, Any]] = field(default_factory=dict)
    media: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    pruned: int = 0


def link(target: Path, out: Path) -> str:
    """A relative URL from the report folder to ``target`` (works from disk while both stay put)."""
    try:
        rel = os.path.relpath(target, out)
    except ValueError:  # another drive on Windows
        return target.resolve().as_uri()
    return quote(rel.replace(os.sep, "/"))


# ------------------------------------------------------------------ selection
def select(prompts: dict[str, dict[str, Any]], runs: list[dict[str, Any]], *, prompt_ids: set[str] | None,
           statuses: set[str], since: datetime | None,
           sweeps: set[str] | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """Prompts to show (ids, parents before their enhanced children) and the runs to show."""
    wanted = None
    if prompt_ids:
        wanted = set(prompt_ids)
        children: dict[str, list[str]] = {}
        for p in prompts.values():
            if p.get("parent_prompt"):
                children.setdefault(p["parent_prompt"], []).append(p["id"])
        todo = list(wanted)
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in wanted:
                    wanted.add(child)
                    todo.append(child)

    def keep(run: dict[str, Any]) -> bool:
        if wanted is not None and run.get("prompt_id") not in wanted:
            return False
        if statuses and run["status"] not in statuses:
            return False
        if sweeps and run.get("sweep") not in sweeps:
            return False
        if since is not None:
            try:
                created = datetime.fromisoformat(run["created"])
            except (KeyError, ValueError):
                return False
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            if created < since:
                return False
        return True

    chosen = [r for r in runs if keep(r)]
    if statuses or since is not None or sweeps:
        shown: set[str] = {r["prompt_id"] for r in chosen if r.get("prompt_id") in prompts}
    else:
        shown = set(prompts) if wanted is None else wanted & set(prompts)
    return sorted(shown), chosen


# ------------------------------------------------------------------ building
class Builder:
    def __init__(self, home: Path, out: Path, settings: Any = None, jobs: int | None = None) -> None:
        self.home = Path(home)
        self.out = Path(out)
        self.settings = settings
        self.workers = jobs
        self.cache = MediaCache(self.out)
        self.jobs: list[Job] = []
        self._batch_emulator: dict[str, bool] = {}

    # media jobs
    def _job(self, key: str, src: Path, frames: int | None) -> Job:
        job = Job(key=key, src=src, frames=frames)
        self.jobs.append(job)
        return job

    def _is_emulator(self, run: dict[str, Any], folder: Path) -> bool:
        """The batch folder's emulator.json, the run's log or prompt text, or the video's own metadata say so."""
        outputs = run.get("outputs") or {}
        batch_id = run.get("batch_id")
        if batch_id:
            if batch_id not in self._batch_emulator:
                outs = self.home / "batches" / batch_id / "outputs"
                self._batch_emulator[batch_id] = outs.is_dir() and (
                    (outs / "emulator.json").is_file() or any(outs.glob("*/emulator.json")))
            if self._batch_emulator[batch_id]:
                return True
        for name in ("logs/run.log", "prompt.txt", "enhanced_prompt.txt"):
            try:
                with open(folder / name, "rb") as fh:
                    if EMULATOR_MARK.encode() in fh.read(16384):
                        return True
            except OSError:
                continue
        if (folder / "logs" / "run.log").is_file():
            return False  # the emulator always names itself at the top of the log
        return any(_video_mentions(self.home / rel, EMULATOR_MARK.encode()) for name, rel in outputs.items()
                   if name.endswith(".mp4"))

    def run_view(self, run: dict[str, Any], prompts: dict[str, dict[str, Any]],
                 batches: dict[str, dict[str, Any]]) -> RunView:
        from cosmoskit.api import seconds_between

        view = RunView(run)
        rid = run["id"]
        folder = self.home / "outputs" / f"run_{rid}"
        outputs = run.get("outputs") or {}
        op = run.get("operation")
        prompt = prompts.get(run.get("prompt_id") or "")
        view.duration = seconds_between(run.get("started"), run.get("finished"))
        batch = batches.get(run.get("batch_id") or "")
        if batch:
            view.batch_size = max(1, len(batch.get("runs") or []))
        # the main output
        # every transfer model's main output is output.mp4 (the model's own file, renamed in the run folder)
        name = MAIN_OUTPUT.get(op or "") or ("output.mp4" if "output.mp4" in outputs or not outputs else None)
        if name is None or (name not in outputs and outputs):
            name = next((k for k in outputs if k.endswith(".mp4") and control_hint(k) is None), name)
        view.main_name = name
        if name:
            rel = outputs.get(name) or f"outputs/run_{rid}/{name}"
            path = self.home / rel
            expected = name in outputs or run["status"] == "completed"
            if name.endswith(".txt"):
                try:
                    view.text_output = path.read_text(encoding="utf-8", errors="replace").strip()
                    view.main_link = link(path, self.out)
                except OSError:
                    if expected:
                        view.main_missing = True
                if view.text_output is None and run.get("result_prompt") in prompts and not view.main_missing:
                    view.text_output = prompts[run["result_prompt"]].get("text")
            elif expected:
                view.main_link = link(path, self.out)
                view.main = self._job(f"runs/{rid}/{Path(name).stem}", path, _frames_hint(run, prompt))
        # controls the model generated (vis/edge … when the prompt had no such video)
        for cname, rel in sorted(outputs.items()):
            hint = control_hint(cname)
            if hint is not None:
                path = self.home / rel
                view.controls.append((hint, self._job(f"runs/{rid}/{hint}_control", path, _frames_hint(run, prompt)),
                                      link(path, self.out)))
        # logs
        log = folder / "logs" / "run.log"
        if log.is_file():
            view.log_link = link(log, self.out)
            if run["status"] == "failed":
                view.log_link, view.log_tail = self._copy_log(rid, log)
        view.emulator = self._is_emulator(run, folder) if folder.is_dir() or run.get("batch_id") else False
        return view

    def _copy_log(self, rid: str, log: Path) -> tuple[str, str]:
        """A failed run's log travels with the report (its last 256 KB); returns its link and last lines."""
        dest = self.out / "media" / "runs" / rid / "run.log.txt"
        dest.parent.mkdir(parents=True, exist_ok=True)
        size = log.stat().st_size
        with open(log, "rb") as fh:
            if size > LOG_TAIL_BYTES:
                fh.seek(size - LOG_TAIL_BYTES)
            data = fh.read()
        if size > LOG_TAIL_BYTES:
            data = b"[... only the last 256 KB of the log ...]\n" + data.split(b"\n", 1)[-1]
        dest.write_bytes(data)
        text = data.decode("utf-8", errors="replace").rstrip().splitlines()
        return f"media/runs/{quote(rid)}/run.log.txt", "\n".join(text[-15:])

    def build(self, prompts: dict[str, dict[str, Any]], all_runs: list[dict[str, Any]],
              batches: dict[str, dict[str, Any]], *, prompt_ids: set[str] | None = None,
              statuses: set[str] | None = None, since: datetime | None = None,
              filters: dict[str, Any] | None = None, sweeps: set[str] | None = None) -> Report:
        from cosmoskit import api
        from cosmoskit_report import render, summary

        started = time.monotonic()
        self.out.mkdir(parents=True, exist_ok=True)
        runs_by_id = {r["id"]: r for r in all_runs}
        shown_prompts, chosen = select(prompts, all_runs, prompt_ids=prompt_ids, statuses=statuses or set(),
                                       since=since, sweeps=sweeps)
        chosen.sort(key=lambda r: r.get("created") or "", reverse=True)
        views = {r["id"]: self.run_view(r, prompts, batches) for r in chosen}

        # sections: one per prompt, enhanced prompts under their parent
        sections: dict[str, PromptView] = {}
        for pid in shown_prompts:
            p = prompts[pid]
            section = PromptView(p)
            for key, record in (p.get("inputs") or {}).items():
                path = Path(record.get("path") or "")
                sha = record.get("sha256") or ""
                media_key = f"inputs/{sha[:24]}" if sha else f"inputs/{_digest(str(path))}"
                section.inputs.append((key,
                                       self._job(media_key, path, record.get("frames")) if record.get("path") else None,
                                       record))
            sections[pid] = section
        loose = PromptView(None)
        for view in views.values():  # newest first
            run = view.run
            section = sections.get(run.get("prompt_id") or "", loose)
            parent = views.get(run.get("parent_run") or "")
            if run.get("operation") == "upscale" and parent is not None:
                parent.upscales.append(view)
            else:
                section.units.append(view)
            section.emulator = section.emulator or view.emulator
        for section in [*sections.values(), loose]:
            section.units = by_sweep(section.units)
        top: list[PromptView] = []
        for section in sections.values():
            parent = section.prompt.get("parent_prompt") if section.prompt else None
            if parent in sections:
                sections[parent].children.append(section)
            else:
                top.append(section)

        def latest(s: PromptView) -> str:
            stamps = [u.run.get("created") or "" for u in s.units] + [(s.prompt or {}).get("created") or ""]
            stamps += [latest(c) for c in s.children]
            return max(stamps)

        top.sort(key=latest, reverse=True)
        if loose.units:
            top.append(loose)

        # media: thumbnails, contact sheets, previews (reused when unchanged)
        pruned = self.cache.prune_runs(set(runs_by_id))
        self.cache.run(self.jobs, self.workers)
        counts: dict[str, int] = {}
        for job in {j.key: j for j in self.jobs}.values():
            counts[job.state] = counts.get(job.state, 0) + 1

        cost_ratio = summary.cost_ratio_from_settings(self.settings, prompts) if self.settings is not None else None
        figures = summary.compute(chosen, runs_by_id, batches, cost_ratio)
        figures["emulator_runs"] = sum(1 for v in views.values() if v.emulator)
        controls = sorted({c for r in chosen for c in ((r.get("params") or {}).get("weights") or {})},
                          key=_control_order)
        report = Report(home=self.home, out=self.out, sections=top, runs=list(views.values()), summary=figures,
                        filters=filters or {}, generated=api.now(), controls=controls, prompts=prompts, media=counts,
                        pruned=pruned)
        for name in ("report.css", "report.js"):
            shutil.copyfile(STATIC / name, self.out / name)
        tmp = self.out / ".index.html.tmp"
        tmp.write_text(render.page(report), encoding="utf-8")
        os.replace(tmp, self.out / "index.html")
        report.seconds = time.monotonic() - started
        return report


_CONTROL_ORDER = ("vis", "edge", "depth", "seg", "keypoint", "upscale")


def _control_order(name: str) -> tuple[int, str]:
    return (_CONTROL_ORDER.index(name) if name in _CONTROL_ORDER else len(_CONTROL_ORDER), name)


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _video_mentions(path: Path, mark: bytes, window: int = 1 << 16) -> bool:
    """Whether ``mark`` sits in the first or last ``window`` bytes of a file (MP4 metadata lives in ``moov``)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(window)
            size = fh.seek(0, 2)
            if size > window:
                fh.seek(max(window, size - window))
                head += fh.read(window)
    except OSError:
        return False
    return mark in head


def _frames_hint(run: dict[str, Any], prompt: dict[str, Any] | None) -> int | None:
    params = run.get("params") or {}
    video = params.get("video")
    if isinstance(video, dict) and video.get("frames"):
        return int(video["frames"])
    if prompt and prompt.get("frames"):
        return int(prompt["frames"])
    return None


# ------------------------------------------------------------------ the command
def summary_json(report: Report) -> dict[str, Any]:
    return {
        "out": str(report.out),
        "index": str(report.out / "index.html"),
        "prompts": _count_sections(report.sections),
        "runs": len(report.runs),
        "media": report.media,
        "pruned_runs": report.pruned,
        "seconds": round(report.seconds, 3),
        "filters": report.filters,
        "summary": report.summary,
        "run_ids": [v.id for v in report.runs],
        "missing_outputs": [v.id for v in report.runs
                            if v.main_missing or (v.main is not None and v.main.state == "missing")],
        "emulator_runs": [v.id for v in report.runs if v.emulator],
    }


def _count_sections(sections: list[PromptView]) -> int:
    return sum(1 + _count_sections(s.children) for s in sections if s.prompt is not None)


def by_sweep(units: list[RunView]) -> list[RunView]:
    """Newest first, but the runs of one sweep side by side (in the order the sweep made them), the sweep
    where its newest run would be."""
    groups: dict[str, list[RunView]] = {}
    for view in units:  # newest first
        groups.setdefault(view.run.get("sweep") or view.id, []).append(view)
    out: list[RunView] = []
    for members in groups.values():  # in order of each group's newest run
        out += sorted(members, key=lambda v: (v.run.get("created") or "", v.id))
    return out


def run_command(*, prompts: list[str], statuses: list[str], since: str | None, out: Path | None,
                open_browser: bool, jobs: int | None, json_: bool, sweeps: list[str] | None = None) -> Report:
    from cosmoskit import api

    wanted_statuses = parse_statuses(statuses)
    since_dt = parse_since(since)
    if jobs is not None and jobs < 1:
        raise CosmoskitError("--jobs must be 1 or more")
    settings = api.settings()
    home = api.home()
    target = (Path(out).expanduser() if out else home / "report").resolve()
    if target.exists() and not target.is_dir():
        raise CosmoskitError(f"--out {target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not (target / "index.html").exists() \
            and not (target / "media").exists():
        raise CosmoskitError(f"--out {target}: a folder that is not empty and holds no report",
                             hint="choose a new or empty folder")
    with api.ledger().read() as tx:
        prompt_ids = {tx.resolve_prompt(p) for p in prompts} if prompts else None
        all_prompts = {p["id"]: dict(p) for p in tx.prompts()}
        all_runs = [dict(r) for r in tx.runs()]
        batches = {b["id"]: dict(b) for b in tx.batches()}
    wanted_sweeps = {w.strip() for s in sweeps or [] for w in s.split(",") if w.strip()}
    known = {r.get("sweep") for r in all_runs}
    unknown = sorted(wanted_sweeps - known)
    if unknown:
        raise CosmoskitError(f"no sweep {unknown[0]!r} in the ledger",
                             hint="`cosmoskit run list --json` shows each run's sweep")
    filters = {"prompt": sorted(prompt_ids) if prompt_ids else None, "status": sorted(wanted_statuses) or None,
               "since": since_dt.isoformat() if since_dt else None, "sweep": sorted(wanted_sweeps) or None}
    report = Builder(home, target, settings, jobs).build(all_prompts, all_runs, batches, prompt_ids=prompt_ids,
                                                         statuses=wanted_statuses, since=since_dt, filters=filters,
                                                         sweeps=wanted_sweeps or None)
    index = target / "index.html"
    if json_:
        api.emit_json(summary_json(report))
    else:
        m = report.media
        api.say(f"Wrote [bold]{index}[/bold]: {len(report.runs)} run(s), {_count_sections(report.sections)} prompt(s); "
                   f"media {m.get('made', 0)} made, {m.get('reused', 0)} reused"
                   + (f", {m['missing']} missing" if m.get("missing") else "")
                   + (f", {m['failed']} unreadable" if m.get("failed") else "")
                   + f" ({report.seconds:.1f} s)")
    if open_browser:
        import webbrowser

        try:
            opened = webbrowser.open(index.as_uri())
        except webbrowser.Error:
            opened = False
        if not opened:  # a server with no display, no browser installed: say where the page is
            api.warn(f"no web browser could be opened here; open {index} yourself")
    return report
