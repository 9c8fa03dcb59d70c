"""New prompts from the browser: a folder on disk, or a folder of frames uploaded into the home.

A folder that already holds an RGB video becomes a prompt as ``cosmoskit prompt create`` makes it;
a folder of frames goes through ``cosmoskit prepare`` first (the drop folder's encoder: colour,
depth and segmentation frames to the prompt's videos, every problem reported at once).  Uploads
land in ``<home>/uploads/<name>-<id>/`` and are never written anywhere else.
"""
from __future__ import annotations

import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosmoskit import api
from cosmoskit.api import CosmoskitError, Ledger, PromptRecord, Settings

UPLOADS = "uploads"
MAX_UPLOAD_FILES = 20000


@dataclass(frozen=True)
class Made:
    prompt: PromptRecord
    prepared: bool  # frames were encoded into videos first
    notes: list[str]


def has_video(folder: Path) -> bool:
    return folder.is_file() or any((folder / name).is_file() for name in api.RGB_NAMES)


def prepare_frames(folder: Path) -> tuple[Path, list[str]]:
    """Encode a folder of frames (one shot) into prompt videos; every problem in one error."""
    from cosmoskit_dropfolder import prepare

    try:
        results = prepare.prepare(folder, single=True)
    except prepare.PrepareError as exc:
        lines = exc.lines(str(exc.folder))
        raise CosmoskitError("; ".join(lines[:8]) + (f" (+{len(lines) - 8} more)" if len(lines) > 8 else ""),
                             input_problem=True) from None
    result = results[0]
    return result.folder, list(result.notes)


def sidecar_text(folder: Path) -> tuple[str | None, str | None]:
    """The prompt text and negative prompt a folder's ``cosmos.yaml``/``prompt.txt`` gives, if any."""
    try:
        from cosmoskit_dropfolder import sidecar

        side, _problems = sidecar.parse(folder)
    except Exception:
        return None, None
    return side.text, side.negative


def from_folder(settings: Settings, ledger: Ledger, folder: Path, text: str, *, name: str | None = None,
                negative: str | None = None) -> Made:
    folder = Path(folder).expanduser()
    if not folder.is_absolute():
        folder = settings.home / folder
    if not folder.exists():
        raise CosmoskitError(f"{folder}: no such folder or file")
    notes: list[str] = []
    prepared = False
    source = folder
    if folder.is_dir() and not has_video(folder):
        source, notes = prepare_frames(folder)
        prepared = True
    if not text.strip() and folder.is_dir():
        side_text, side_negative = sidecar_text(folder)
        text = side_text or ""
        negative = negative or side_negative
    if not text.strip():
        raise CosmoskitError("the prompt text is empty", hint="write the text, or put prompt.txt in the folder")
    with ledger.read() as tx:
        taken = {p["name"] for p in tx.prompts()}
    if name and name in taken:
        raise CosmoskitError(f"a prompt named {name!r} exists already")
    doc = api.new_prompt(text, source, name=name or None, negative=negative or None, taken_names=taken)
    with ledger.transaction() as tx:
        made = tx.add_prompt(doc)
    return Made(made, prepared, notes)


def safe_parts(filename: str) -> list[str]:
    """The relative path an upload gives, as parts that stay inside its folder (or ValueError)."""
    parts = [p for p in re.split(r"[\\/]+", filename) if p not in ("", ".")]
    if not parts or any(p == ".." or "\x00" in p or p.startswith("~") for p in parts):
        raise ValueError(filename)
    return parts


def upload_folder(home: Path, files: list[tuple[str, Any]]) -> Path:
    """Write uploaded ``(relative name, file object)`` pairs into a new folder under ``<home>/uploads``."""
    if not files:
        raise CosmoskitError("no files were uploaded; choose a folder of frames")
    if len(files) > MAX_UPLOAD_FILES:
        raise CosmoskitError(f"{len(files)} files is more than {MAX_UPLOAD_FILES} in one upload")
    try:
        paths = [safe_parts(name) for name, _ in files]
    except ValueError as exc:
        raise CosmoskitError(f"refused upload path {str(exc)!r}: it would leave its folder") from None
    # a browser sends "<chosen folder>/<file>": that folder's name names the upload
    top = {p[0] for p in paths}
    base = paths[0][0] if len(top) == 1 and all(len(p) > 1 for p in paths) else "upload"
    if len(top) == 1 and all(len(p) > 1 for p in paths):
        paths = [p[1:] for p in paths]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.")[:60] or "upload"
    dest = home / UPLOADS / f"{slug}-{secrets.token_hex(3)}"
    dest.mkdir(parents=True)
    try:
        for parts, (_, handle) in zip(paths, files, strict=True):
            target = dest.joinpath(*parts)
            if not target.resolve().is_relative_to(dest.resolve()):
                raise CosmoskitError(f"refused upload path {'/'.join(parts)!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                shutil.copyfileobj(handle, out)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest
