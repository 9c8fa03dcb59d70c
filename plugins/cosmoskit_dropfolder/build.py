"""A claimed folder becomes a prompt and its runs, validated but not written (runs on a pool thread).

The sidecar is read, frame sequences are encoded (``prepare``), the videos are probed by
``new_prompt`` and the engine validates one run of the transfer model (the sidecar's ``model:``, else
``default_model``) per weight set.  Bad input is a
``Rejected`` with one line per problem; anything unexpected is raised for the watcher to retry.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosmoskit import api
from cosmoskit.api import CosmoskitError
from cosmoskit_dropfolder import prepare, sidecar
from cosmoskit_dropfolder.contents import Fingerprint
from cosmoskit_dropfolder.records import RejectWhy


@dataclass
class Built:
    fp: Fingerprint
    dest: Path
    prompt: dict[str, Any]
    runs: list[dict[str, Any]]
    named_by_sidecar: bool      # a sidecar name is kept as given; a folder name is made unique
    notes: list[str]
    attempts: int = 0           # failed commits so far


@dataclass
class Rejected:
    fp: Fingerprint
    dest: Path
    lines: list[str]
    why: RejectWhy = "input"


@dataclass(frozen=True)
class Defaults:
    """What the sidecar leaves out (``watch:`` in cosmoskit.yaml)."""

    text: str | None
    priority: int
    fps: float


@dataclass
class Builder:
    defaults: Defaults
    engine: Any          # cosmoskit.api.Engine: validates the runs

    def build(self, fp: Fingerprint, dest: Path) -> Built | Rejected:
        try:
            side = sidecar.read(dest)
        except sidecar.SidecarError as exc:
            return Rejected(fp, dest, [str(exc)])
        text = side.text or self.defaults.text
        if not text:
            return Rejected(fp, dest, ["no prompt text: add cosmos.yaml (prompt: …) or prompt.txt to the folder, "
                                       "or set watch.prompt in cosmoskit.yaml"])
        try:
            name = side.name or sidecar.check_name(fp.name, "folder name")
        except sidecar.SidecarError as exc:
            return Rejected(fp, dest, [str(exc)])
        try:
            results = prepare.prepare(dest, fps=side.fps, default_fps=self.defaults.fps, single=True,
                                      sidecar_fps=False, verify=False)
        except prepare.PrepareError as exc:
            return Rejected(fp, dest, exc.lines())
        except CosmoskitError as exc:
            return Rejected(fp, dest, [str(exc)])
        notes = [n for r in results for n in r.notes]
        try:
            doc = api.new_prompt(text, dest, name=name, negative=side.negative, extra={
                "source": {"kind": "drop", "folder": fp.path, "hash": fp.hash, "sidecar": side.files}})
        except CosmoskitError as exc:
            return Rejected(fp, dest, [str(exc)])
        if results and doc["frames"] != results[0].frames:
            return Rejected(fp, dest, [f"{Path(doc['inputs']['rgb']['path']).name}: {doc['frames']} frames, but "
                                       f"{results[0].frames} frames were encoded"])
        doc["id"] = api.new_id("ps")
        model = side.model or str(api.settings().get("default_model"))
        operation = sidecar.transfer_models().get(model)
        if operation is None:
            return Rejected(fp, dest, [f"model {model!r} is not a loaded transfer model (default_model, or the "
                                       f"sidecar's model:)"])
        runs: list[dict[str, Any]] = []
        where = side.files[0] if side.files and side.files[0] != "prompt.txt" else "transfer defaults"
        extra = {"source": "watch", "drop_folder": fp.name}
        if len(side.runs) > 1:  # one sweep: the folder's variations sit side by side (run list --sweep)
            extra["sweep"] = api.new_id("sw")
        for i, run in enumerate(side.runs, 1):
            params = {**side.params, **{k: v for k, v in run.items() if k != "priority"}}
            priority = run.get("priority", side.priority if side.priority is not None else self.defaults.priority)
            try:
                runs += self.engine.new_runs(operation, [doc["id"]], params, priority=priority, extra=extra,
                                             prompts={doc["id"]: doc})
            except CosmoskitError as exc:
                label = f"{where}: weights #{i}" if len(side.runs) > 1 else where
                return Rejected(fp, dest, [f"{label}: {exc}"])
        return Built(fp, dest, doc, runs, side.name is not None, notes)
