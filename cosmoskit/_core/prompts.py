"""Making prompts: finding a prompt's videos, probing them, naming the prompt."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cosmoskit._core import media, timeutil
from cosmoskit._core.errors import CosmoskitError
from cosmoskit._core.textcheck import text_problem

# Longer than any prompt a text encoder reads (T5 stops at 512 tokens); a name is a label in tables.
PROMPT_LIMIT = 20_000
NAME_LIMIT = 200

RGB_NAMES = ("color.mp4", "rgb.mp4", "input.mp4")
CONTROL_NAMES = {
    "depth": ("depth.mp4",),
    "seg": ("seg.mp4", "segmentation.mp4"),
    "edge": ("edge.mp4",),
    "vis": ("vis.mp4",),
    "keypoint": ("keypoint.mp4",),
    "wsm": ("wsm.mp4",),  # Cosmos 3's world-scenario map (driving); it cannot compute one
}

_STOP = {
    "a",
    "an",
    "the",
    "of",
    "in",
    "on",
    "at",
    "to",
    "for",
    "from",
    "with",
    "and",
    "or",
    "but",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "by",
    "as",
    "into",
    "onto",
    "over",
    "under",
    "this",
    "that",
    "these",
    "those",
    "it",
    "its",
    "their",
    "his",
    "her",
    "our",
    "your",
    "my",
    "video",
    "scene",
    "shows",
    "showing",
    "captures",
    "there",
    "which",
    "who",
    "while",
    "very",
    "some",
}


def find_inputs(source: Path) -> dict[str, Path]:
    """The RGB video and any control videos of a folder (or a single mp4)."""
    source = Path(source).expanduser()
    if not source.exists():
        raise CosmoskitError(f"{source}: no such file or folder")
    if source.is_file():
        if source.suffix.lower() != ".mp4":
            raise CosmoskitError(f"{source}: expected an .mp4 video or a folder holding one")
        return {"rgb": source.resolve()}
    found: dict[str, Path] = {}
    rgb = [source / n for n in RGB_NAMES if (source / n).is_file()]
    if not rgb:
        raise CosmoskitError(
            f"{source}: no RGB video; expected one of {', '.join(RGB_NAMES)}",
            hint="`cosmoskit prepare` makes them from frame sequences",
        )
    if len(rgb) > 1:
        raise CosmoskitError(f"{source}: several RGB videos ({', '.join(p.name for p in rgb)}); keep one")
    found["rgb"] = rgb[0].resolve()
    for hint, names in CONTROL_NAMES.items():
        present = [source / n for n in names if (source / n).is_file()]
        if len(present) > 1:
            raise CosmoskitError(f"{source}: both {present[0].name} and {present[1].name}; keep one {hint} video")
        if present:
            found[hint] = present[0].resolve()
    return found


def describe_inputs(found: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Probe each video and refuse sets that do not match the RGB video frame for frame."""
    from concurrent.futures import ThreadPoolExecutor

    def describe(path: Path) -> dict[str, Any]:
        info = media.probe(path)
        return {"path": str(path), "sha256": media.sha256_file(path), "bytes": path.stat().st_size, **info.as_dict()}

    # ffmpeg mostly waits while probing, so the videos of one prompt are probed side by side
    with ThreadPoolExecutor(max_workers=min(4, len(found))) as pool:
        described = dict(zip(found, pool.map(describe, found.values()), strict=False))
    inputs: dict[str, dict[str, Any]] = {key: described[key] for key in found}
    rgb = inputs["rgb"]
    for key, item in inputs.items():
        if key == "rgb":
            continue
        for fact in ("frames", "width", "height"):
            if item[fact] != rgb[fact]:
                raise CosmoskitError(
                    f"{item['path']}: {key} video has {fact} {item[fact]} but the RGB video "
                    f"{Path(rgb['path']).name} has {rgb[fact]}; controls must match the RGB video"
                )
        if abs(item["fps"] - rgb["fps"]) > 0.01:
            raise CosmoskitError(
                f"{item['path']}: {key} video runs at {item['fps']:g} fps but the RGB video at {rgb['fps']:g} fps"
            )
    return inputs


def name_from_text(text: str, taken: set[str] | None = None, words: int = 4) -> str:
    """A short readable name from the prompt text: its first significant words."""
    tokens = [t for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in _STOP and len(t) > 1]
    base = "-".join(tokens[:words]) or "prompt"
    name, n = base, 1
    while taken and name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def new_prompt(
    text: str,
    source: Path,
    *,
    name: str | None = None,
    negative: str | None = None,
    taken_names: set[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A prompt record ready for the ledger (probing happens here, outside any lock)."""
    if not isinstance(text, str) or not text.strip():
        raise CosmoskitError("the prompt text is empty")
    for value, what in ((text, "the prompt text"), (name, "the prompt name"), (negative, "the negative prompt")):
        problem = text_problem(value, what, limit=PROMPT_LIMIT if what != "the prompt name" else NAME_LIMIT)
        if value is not None and problem:
            raise CosmoskitError(problem, input_problem=True)
    inputs = describe_inputs(find_inputs(source))
    rgb = inputs["rgb"]
    doc: dict[str, Any] = {
        "name": name or name_from_text(text, taken_names),
        "text": text.strip(),
        "negative_prompt": negative,
        "inputs": inputs,
        "fps": rgb["fps"],
        "frames": rgb["frames"],
        "width": rgb["width"],
        "height": rgb["height"],
        "parent_prompt": None,
        "history": [],
        "created": timeutil.now(),
    }
    doc.update(extra or {})
    return doc
