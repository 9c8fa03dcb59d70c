"""The JSONL Cosmos 3 reads for transfer: one complete sample per run (docs/models/cosmos3.md §4, §10).

Pure functions, checked field by field in tests/test_cosmos3.py against the contract and the
cookbook's own specs:

* ``name`` unique and filesystem-safe (the run id: it becomes ``<out>/<name>/``);
* ``model_mode: "video2video"``; the prompt inline; an inline ``negative_prompt`` when there is one;
* ``weight`` in the hint blocks, never ``control_weight`` or ``input_control`` (unknown keys are errors
  at every level); cosmoskit's own ids in ``extra``;
* every field of the checklist's explicit set written out, so no default (and no default that only
  applies to one-hint samples) decides the result;
* paths relative to the spec file's folder.
"""
from __future__ import annotations

import re
from typing import Any

import orjson

from cosmoskit_cosmos3 import contract

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# §4: the explicit set, written for every sample
EXPLICIT = ("resolution", "aspect_ratio", "fps", "num_steps", "guidance", "control_guidance", "shift", "seed",
            "num_video_frames_per_chunk", "num_conditional_frames", "negative_metadata_mode",
            "negative_prompt_keep_metadata", "emphasize_control_in_prompt")
HINT_KEYS = {"edge": {"control_path", "weight", "preset_edge_threshold"},
             "blur": {"control_path", "weight", "preset_blur_strength"},
             "depth": {"control_path", "weight"}, "seg": {"control_path", "weight"}, "wsm": {"control_path", "weight"}}


def sample(name: str, prompt: str, params: dict[str, Any], *, vision: str, width: int, height: int, fps: float,
           frames: int, controls: dict[str, str | None], extra: dict[str, Any]) -> dict[str, Any]:
    """One transfer sample.  ``vision`` is the prompt's RGB video (for edge/blur on the fly and the output's
    rate), ``width``/``height`` its size (the aspect bucket to crop to), ``frames`` the transfer length
    (the first hint's video, else the RGB's) and ``controls`` each hint's video or None (computed)."""
    if not SAFE_NAME.match(name):
        raise ValueError(f"sample name {name!r} is not filesystem-safe")
    out: dict[str, Any] = {
        "name": name,
        "model_mode": "video2video",
        "prompt": prompt,
        "vision_path": vision,
        "resolution": params["resolution"],
        "aspect_ratio": contract.aspect(width, height),
        "fps": max(1, round(fps)),  # the control's native rate; the output takes vision_path's own (§5)
        "num_frames": frames,  # does not set the length (§4); written as the transfer's
        "num_steps": int(params["num_steps"]),
        "guidance": float(params["guidance"]),
        "control_guidance": float(params["control_guidance"]),
        "shift": contract.SHIFT,
        "seed": int(params["seed"]),
        "num_video_frames_per_chunk": int(params["chunk_frames"]),
        "num_conditional_frames": contract.CONDITIONAL_FRAMES,
        "num_first_chunk_conditional_frames": 0,
        "share_vision_temporal_positions": True,
        "negative_metadata_mode": "none",
        "negative_prompt_keep_metadata": False,
        "emphasize_control_in_prompt": bool(params["emphasize_control_in_prompt"]),
        "extra": extra,
    }
    if params.get("negative_prompt"):
        out["negative_prompt"] = params["negative_prompt"]
    presets = {"edge": params.get("canny_threshold"), "blur": params.get("blur_strength")}
    for hint in contract.HINTS:
        if hint not in params["weights"]:
            continue
        block: dict[str, Any] = {"weight": float(params["weights"][hint])}
        path = controls.get(hint)
        if path:
            block["control_path"] = path
        elif hint in contract.ON_THE_FLY:
            block[contract.PRESET_KEY[hint]] = presets[hint]
        else:
            raise ValueError(f"Cosmos 3 cannot compute a {hint} control: it needs a video")
        out[hint] = block
    return out


def jsonl(samples: list[dict[str, Any]]) -> bytes:
    names = [s["name"] for s in samples]
    if len(set(names)) != len(names):
        raise ValueError("sample names must be unique in a batch")
    return b"\n".join(orjson.dumps(s) for s in samples) + b"\n"


def problems(line: dict[str, Any], known: frozenset[str]) -> list[str]:
    """What upstream would refuse in one sample, given its schema's top-level keys (the tests' contract check)."""
    found = [f"unknown key {k!r}" for k in line if k not in known]
    if not isinstance(line.get("name"), str) or not SAFE_NAME.match(line["name"]):
        found.append("name missing or not filesystem-safe")
    hints = [h for h in contract.HINTS if h in line]
    if not hints:
        found.append("no hint block")
    for hint in hints:
        extra = set(line[hint]) - HINT_KEYS[hint]
        if extra:
            found.append(f"{hint}: unknown keys {sorted(extra)}")
        if line[hint].get("control_path") is None and hint not in contract.ON_THE_FLY:
            found.append(f"{hint} has no control_path and cannot be computed")
        if line[hint].get("control_path") is None and not line.get("vision_path"):
            found.append(f"{hint} has neither control_path nor vision_path")
    missing = [k for k in EXPLICIT if k not in line]
    if missing:
        found.append(f"not written explicitly: {', '.join(missing)}")
    if line.get("negative_metadata_mode") != "none" or line.get("negative_prompt_keep_metadata") is not False:
        found.append("negative metadata not turned off")
    return found
