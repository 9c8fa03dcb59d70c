"""Helpers for bench/faults.py: a fresh project per fault, waiting for conditions, and the audit that
counts what a fault broke (lost, run twice, mislabelled, stuck) by reading the ledger, every batch
folder the model wrote into, and every run's output folder.

Nothing here asserts: a scenario reports what it saw, and the table shows it.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

ACTIVE = ("queued", "staging", "running", "fetching")


def cosmoskit_exe() -> str:
    exe = Path(sys.executable).with_name("cosmoskit")
    return str(exe) if exe.exists() else (shutil.which("cosmoskit") or "cosmoskit")


# ---------------------------------------------------------------------------------------- results
@dataclass
class Row:
    """One line of the table: one fault, what the audit counted and what the scenario saw."""

    fault: str
    runs: int = 0
    lost: int = 0
    twice: int = 0
    mislabelled: int = 0
    stuck: int = 0
    other: int = 0  # the fault's own promise broken (an exit code, a file left claimed …) or a bad video
    recover: float | None = None  # seconds from the fault to every run settled; None: never
    notes: list[str] = field(default_factory=list)
    skipped: str = ""

    @property
    def clean(self) -> bool:
        return not self.skipped and not (self.lost or self.twice or self.mislabelled or self.stuck or self.other)


@dataclass
class Audit:
    runs: int = 0
    lost: list[str] = field(default_factory=list)
    twice: list[str] = field(default_factory=list)
    mislabelled: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    bad_video: list[str] = field(default_factory=list)
    decoded: int = 0  # completed runs whose video decodes to the end at the size the model makes
    recover: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)


class Missed(Exception):
    """A condition a scenario waited for never came (a timeout, or the process it watched ended first)."""


def wait_for(what: str, predicate: Callable[[], Any], *, timeout: float = 180.0, interval: float = 0.02,
             proc: subprocess.Popen[Any] | None = None) -> Any:
    """The predicate's first truthy value. Generous deadlines: a loaded machine is slow, not wrong.
    With ``proc``, its exit before the condition holds is reported at once (the window was missed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            value = predicate()  # one last look: it may have happened just before the exit
            if value:
                return value
            raise Missed(f"{what}: the process ended first (exit {proc.returncode})")
        time.sleep(interval)
    raise Missed(f"{what}: not within {timeout:.0f} s")


# ---------------------------------------------------------------------------------------- inputs
@dataclass
class Scene:
    """One small input video, probed once; every prompt of the bench points at it (or at a padded copy)."""

    folder: Path
    inputs: dict[str, Any]
    fps: float
    frames: int
    width: int
    height: int


def make_scene(folder: Path, pad_mb: int = 0) -> Scene:
    """A 64x36, 8-frame video. ``pad_mb`` appends an mp4 `free` box (which every reader skips) so that
    staging it — a copy and a SHA-256 — takes long enough for a kill to land inside it."""
    from cosmoskit._core.media import make_test_video
    from cosmoskit._core.prompts import describe_inputs, find_inputs

    video = make_test_video(folder / "color.mp4", width=64, height=36, frames=8, fps=24, source="testsrc2")
    if pad_mb:
        size = pad_mb << 20
        with open(video, "ab") as fh:
            fh.write(struct.pack(">I", size) + b"free")
            block = b"\0" * (1 << 20)
            left = size - 8
            while left > 0:
                fh.write(block[: min(left, len(block))])
                left -= len(block)
    inputs = describe_inputs(find_inputs(folder))
    rgb = inputs["rgb"]
    return Scene(folder, inputs, rgb["fps"], rgb["frames"], rgb["width"], rgb["height"])


# ---------------------------------------------------------------------------------------- projects
FAST: dict[str, Any] = {
    "default_executor": "local",
    "model": {"runtime": "emulator"},
    # the emulator is the model: a short load, a chunk long enough that a kill lands mid-batch, and a look of
    # its own for every run (variation: the colour comes from the seed, weights, line and prompt), so that a
    # video can be told from another by its bytes
    "emulator": {"variation": True, "load_seconds": 0.3, "seconds_per_chunk": 1.0},
    "timeouts": {"poll_seconds": 0.2},
    "worker": {"max_attempts": 3, "backoff_seconds": 0.5},
}


@dataclass
class Project:
    """A fresh project folder for one fault, and what the scenario tells the audit."""

    home: Path
    logs: Path
    batch_roots: list[Path] = field(default_factory=list)  # where models wrote batch folders (local, ssh, slurm)
    acknowledged: set[str] = field(default_factory=set)  # run ids the user was told exist
    fault_wall: float | None = None
    notes: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    children: list[subprocess.Popen[str]] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    _spawned: int = 0

    @classmethod
    def fresh(cls, root: Path, name: str) -> Project:
        home = root / name / "proj"
        home.mkdir(parents=True)
        logs = root / name / "logs"
        logs.mkdir()
        return cls(home, logs, [home / "batches"])

    # -- what the scenario says
    def note(self, text: str) -> None:
        self.notes.append(text)

    def promise(self, held: bool, text: str) -> None:
        """A fault's own promise (an exit code, a rejection …): counted in `other` when it did not hold."""
        if not held:
            self.broken.append(text)

    def fault(self) -> None:
        """The instant the fault is injected: time to recover counts from here."""
        self.fault_wall = time.time()

    def acknowledge(self, run_ids: list[str] | set[str]) -> None:
        self.acknowledged.update(run_ids)

    # -- configuration and commands
    def configure(self, **sections: Any) -> None:
        data = {k: dict(v) if isinstance(v, dict) else v for k, v in FAST.items()}
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key].update(value)
            else:
                data[key] = value
        (self.home / "cosmoskit.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COSMOSKIT_")}
        return {**env, "XDG_DATA_HOME": str(self.logs / "xdg")}

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cosmoskit_exe(), *args], cwd=self.home, env=self.env(), capture_output=True,
                              text=True, timeout=timeout)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        """The real ``cosmoskit`` in the background; its output goes to files (no pipe to fill up)."""
        self._spawned += 1
        stem = self.logs / f"{self._spawned:02d}-{args[0]}"
        with open(f"{stem}.out", "w") as out, open(f"{stem}.err", "w") as err:  # the child keeps its own copies
            proc = subprocess.Popen([cosmoskit_exe(), *args], cwd=self.home, env=self.env(), text=True,
                                    stdout=out, stderr=err)
        proc.stem = stem  # type: ignore[attr-defined]
        self.children.append(proc)
        return proc

    @staticmethod
    def output(proc: subprocess.Popen[str]) -> tuple[str, str]:
        stem = proc.stem  # type: ignore[attr-defined]
        return Path(f"{stem}.out").read_text(errors="replace"), Path(f"{stem}.err").read_text(errors="replace")

    @staticmethod
    def finish(proc: subprocess.Popen[str], timeout: float = 600) -> int:
        return proc.wait(timeout=timeout)

    # -- prompts and runs
    def add_prompts(self, scene: Scene, texts: list[str]) -> list[str]:
        """Prompts with their own text each (the text is what tells one run's output from another's),
        all on the scene's video, written straight into the ledger (probed once, not per prompt)."""
        from cosmoskit._core import ids, timeutil
        from cosmoskit._core.ledger import Ledger

        made = []
        with Ledger(self.home).transaction() as tx:
            for k, text in enumerate(texts):
                doc = {"id": ids.new_id("ps"), "name": f"fault-{k}-{secrets.token_hex(3)}", "text": text,
                       "negative_prompt": None, "inputs": json.loads(json.dumps(scene.inputs)), "fps": scene.fps,
                       "frames": scene.frames, "width": scene.width, "height": scene.height, "parent_prompt": None,
                       "history": [], "created": timeutil.now()}
                made.append(tx.add_prompt(doc)["id"])
        return made

    def queue(self, prompt_ids: list[str], *, weights: str, seed: int, extra: tuple[str, ...] = ()) -> list[str]:
        """`cosmoskit transfer … --queue --json`: one run per prompt; the ids it prints are acknowledged."""
        done = self.cli("transfer", *prompt_ids, "--weights", weights, "--seed", str(seed), "--queue", "--json", *extra)
        if done.returncode != 0:
            raise Missed(f"transfer --queue failed: {done.stderr.strip()[-300:]}")
        run_ids = [r["id"] for r in json.loads(done.stdout)]
        self.acknowledge(run_ids)
        return run_ids

    # -- reading the ledger
    def active(self) -> dict[str, Any]:
        """active.json as it is on disk, without the lock (commits are renames: never half a file).
        Empty when missing or damaged — a scenario may have damaged it on purpose."""
        try:
            data = orjson.loads((self.home / "ledger" / "active.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def active_batches(self) -> list[dict[str, Any]]:
        return list((self.active().get("batches") or {}).values())

    def ledger_state(self) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """Every run, batch and prompt, through cosmoskit's own ledger (with its lock)."""
        from cosmoskit._core.ledger import Ledger

        with Ledger(self.home).read() as tx:
            runs = {r["id"]: dict(r) for r in tx.runs()}
            batches = [dict(b) for b in tx.batches()]
            prompts = {p["id"]: dict(p) for p in tx.prompts()}
        return runs, batches, prompts

    # -- cleaning up
    def stop_children(self) -> None:
        """End what this scenario started, by pid: its cosmoskit processes, then any launcher still
        running in one of its batch folders (the model goes with it)."""
        for proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for folder in batch_folders(self.batch_roots):
            pid_file = folder / "launcher.pid"
            if not pid_file.is_file() or (folder / "exit_code").exists():
                continue
            try:
                pid = int(pid_file.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            if b"launch.sh" in cmdline and str(folder).encode() in cmdline:
                try:
                    os.kill(pid, signal.SIGTERM)  # launch.sh stops the model's process group on TERM
                except ProcessLookupError:
                    pass

    def undo(self) -> None:
        """Put back what the scenario changed outside its folder (a mount, a service, a node's state)."""
        for undo in reversed(self.cleanups):
            try:
                undo()
            except Exception as exc:  # a cleanup failing must not hide the row
                self.note(f"cleanup failed: {exc!r}")


# ---------------------------------------------------------------------------------------- batch folders
def batch_folders(roots: list[Path]) -> list[Path]:
    seen: dict[str, Path] = {}
    for root in roots:
        if root.is_dir():
            for folder in sorted(root.glob("bt_*")):
                if folder.is_dir():
                    seen.setdefault(str(folder.resolve()), folder)
    return list(seen.values())


def line_folder(batch_dir: Path, k: int, lines: int) -> Path:
    """Where the model writes line k (docs/models/transfer1.md §3.2): video_<k>/ in batch mode, else outputs/."""
    return batch_dir / "outputs" / f"video_{k}" if lines > 1 else batch_dir / "outputs"


def produced(batch_dir: Path, k: int, lines: int) -> bool:
    """The model finished line k: the emulator writes its emulator.json sidecar after the video."""
    folder = line_folder(batch_dir, k, lines)
    return (folder / "output.mp4").is_file() and (folder / "emulator.json").is_file()


def batch_runs(batch_dir: Path) -> list[str]:
    """The runs of a batch, in line order, as its own command.json says (written before launch)."""
    try:
        return list(json.loads((batch_dir / "command.json").read_text())["runs"])
    except (OSError, ValueError, KeyError):
        return []


def log_has(batch_dir: Path, needle: str) -> bool:
    try:
        return needle in (batch_dir / "batch.log").read_text(errors="replace")
    except OSError:
        return False


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------- the audit
def span(batch_dir: Path) -> str:
    """When the batch's launcher started and finished (its own started_at / finished_at files)."""
    def at(name: str) -> str:
        try:
            return (batch_dir / name).read_text().strip()[11:22]
        except OSError:
            return "?"
    return f"{at('started_at')}–{at('finished_at')}"


def _parse(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp).timestamp() if stamp else None


def audit(p: Project) -> Audit:
    """Count what the fault broke, from the ledger, the batch folders and the run folders."""
    from cosmoskit._core.media import check_video

    runs, _, prompts = p.ledger_state()
    a = Audit(runs=len(p.acknowledged))
    for rid in sorted(p.acknowledged):
        run = runs.get(rid)
        status = run["status"] if run else "missing"
        a.statuses[status] = a.statuses.get(status, 0) + 1
        if run is None:
            a.lost.append(rid)
        elif status in ACTIVE:
            a.stuck.append(f"{rid} {status}")

    # run twice: a run whose line produced a video in more than one batch folder, whether or not the
    # ledger still knows that batch (command.json in the folder names the runs of each line)
    producers: dict[str, list[str]] = {}
    folders: dict[str, Path] = {}
    for folder in batch_folders(p.batch_roots):
        line_runs = batch_runs(folder)
        folders[folder.name] = folder
        for k, rid in enumerate(line_runs):
            if produced(folder, k, len(line_runs)):
                producers.setdefault(rid, []).append(folder.name)
    a.twice = [f"{rid} by " + ", ".join(f"{b} (model {span(folders[b])})" for b in sorted(set(bs)))
               for rid, bs in producers.items() if rid in p.acknowledged and len(set(bs)) > 1]

    for rid in sorted(p.acknowledged):
        run = runs.get(rid)
        if run is None or run["status"] != "completed":
            continue
        problem = _mislabel(p.home, run, prompts.get(run.get("prompt_id") or ""), folders)
        if problem:
            a.mislabelled.append(f"{rid}: {problem}")
            continue
        video = p.home / run["outputs"]["output.mp4"]
        bad = check_video(video)
        if bad:
            a.bad_video.append(f"{rid}: completed, but {bad}")
        else:
            a.decoded += 1

    if not a.lost and not a.stuck and p.fault_wall is not None:
        ends = [_parse(runs[rid].get("finished")) for rid in p.acknowledged]
        if all(e is not None for e in ends):
            a.recover = max(0.0, max(e for e in ends if e is not None) - p.fault_wall)
    return a


def _mislabel(home: Path, run: dict[str, Any], prompt: dict[str, Any] | None, folders: dict[str, Path]) -> str | None:
    """Why this completed run's output is not its own, or None.

    Its run folder's run.json must be this run; its output.mp4 must be byte for byte the video the model
    wrote for this run's line of the batch that completed it; that line's emulator.json must carry this
    run's prompt text, seed and control weights; the prompt.txt and spec.json / batch.jsonl kept with it
    must be this run's."""
    if prompt is None:
        return "its prompt is gone"
    text, params = prompt["text"], run["params"]
    folder = home / "outputs" / f"run_{run['id']}"
    try:
        snap = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return "no readable run.json"
    if snap.get("id") != run["id"] or snap.get("prompt_id") != run["prompt_id"] or snap.get("params") != params:
        return f"run.json describes {snap.get('id')} / {snap.get('prompt_id')}"
    out = home / (run.get("outputs") or {}).get("output.mp4", "-")
    if not out.is_file() or out.parent != folder:
        return f"output.mp4 is not in its own folder ({out})"
    batch_dir = folders.get(run.get("batch_id") or "")
    if batch_dir is None:
        return f"the batch that completed it ({run.get('batch_id')}) has no folder"
    lines = batch_runs(batch_dir)
    if run["id"] not in lines:
        return f"batch {batch_dir.name} has no line for it"
    k = lines.index(run["id"])
    line = line_folder(batch_dir, k, len(lines))
    try:
        sidecar = json.loads((line / "emulator.json").read_text())
    except (OSError, ValueError):
        return f"{batch_dir.name} line {k} has no emulator.json"
    if sidecar.get("prompt") != text:
        return f"the model wrote line {k} for prompt {sidecar.get('prompt')!r}, not {text!r}"
    if sidecar.get("seed") != params.get("seed"):
        return f"line {k} ran with seed {sidecar.get('seed')}, the run asked for {params.get('seed')}"
    weights = {h: float(c.get("control_weight") or 0) for h, c in (sidecar.get("controls") or {}).items()}
    if any(abs(weights.get(h, -1) - float(w)) > 1e-9 for h, w in params["weights"].items()):
        return f"line {k} ran with weights {weights}, the run asked for {params['weights']}"
    if sha256(out) != sha256(line / "output.mp4"):
        return f"its output.mp4 is not the video of line {k} of {batch_dir.name}"
    kept = folder / "prompt.txt"
    if kept.is_file() and kept.read_text() != text:
        return "its prompt.txt holds another prompt"
    try:
        command = json.loads((folder / "command.json").read_text())
    except (OSError, ValueError):
        return "no readable command.json"
    if command.get("batch") != batch_dir.name:
        return f"its command.json is batch {command.get('batch')}'s, its video came from {batch_dir.name}"
    kept_lines = folder / "batch.jsonl"
    if kept_lines.is_file() and len(lines) == 1:
        # the batch that made the video ran one line from spec.json: a batch.jsonl here is another batch's
        origin = next((f.name for f in folders.values() if (f / "batch.jsonl").is_file()
                       and sha256(f / "batch.jsonl") == sha256(kept_lines)), "an unknown batch")
        return (f"its folder keeps the batch.jsonl of {origin} (an earlier attempt, lines for other runs too) "
                f"beside the spec.json and command.json of {batch_dir.name}, which made its video")
    if kept_lines.is_file():
        spec_lines = kept_lines.read_text().splitlines()
        if k >= len(spec_lines) or json.loads(spec_lines[k]).get("prompt") != text:
            return f"its batch.jsonl line {k} is another run's"
    elif (folder / "spec.json").is_file() and json.loads((folder / "spec.json").read_text()).get("prompt") != text:
        return "its spec.json is another run's"
    return None


def row_from(fault: str, p: Project, a: Audit) -> Row:
    notes = list(p.notes)
    notes += [f"NOT HELD: {b}" for b in p.broken]
    for label, items in (("lost", a.lost), ("run twice", a.twice), ("mislabelled", a.mislabelled),
                         ("stuck", a.stuck), ("bad video", a.bad_video)):
        notes += [f"{label}: {item}" for item in items]
    notes.append("final: " + ", ".join(f"{n} {s}" for s, n in sorted(a.statuses.items()))
                 + f"; {a.decoded} completed video(s) checked frame by frame")
    return Row(fault, a.runs, len(a.lost), len(a.twice), len(a.mislabelled), len(a.stuck),
               len(p.broken) + len(a.bad_video), a.recover, notes)


# ---------------------------------------------------------------------------------------- the table
COLUMNS = ("fault", "runs", "lost", "run twice", "mislabelled", "stuck", "other", "time to recover")


def cells(row: Row) -> tuple[str, ...]:
    if row.skipped:
        return (row.fault, "-", "-", "-", "-", "-", "-", f"skipped: {row.skipped}")
    recover = f"{row.recover:.1f} s" if row.recover is not None else "never"
    return (row.fault, str(row.runs), str(row.lost), str(row.twice), str(row.mislabelled), str(row.stuck),
            str(row.other), recover)


def print_table(rows: list[Row], wall: float) -> None:
    body = [cells(r) for r in rows]
    widths = [max(len(c[i]) for c in [COLUMNS, *body]) for i in range(len(COLUMNS))]

    def line(c: tuple[str, ...]) -> str:
        return "| " + " | ".join(v.ljust(widths[i]) if i == 0 or i == len(c) - 1 else v.rjust(widths[i])
                                 for i, v in enumerate(c)) + " |"

    print(line(COLUMNS))
    print("|" + "|".join(("-" * (w + 2)) for w in widths) + "|")
    for c in body:
        print(line(c))
    clean = sum(1 for r in rows if r.clean)
    ran = sum(1 for r in rows if not r.skipped)
    print(f"\n{clean} of {ran} faults run with every count zero; total wall time {wall:.0f} s")
