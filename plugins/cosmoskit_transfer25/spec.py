"""The JSONL Transfer 2.5 reads: one complete sample per run (docs/models/transfer2.5.md §4, §10).

Pure functions, checked field by field in tests/test_transfer25.py against the contract and
upstream's own example specs:

* one JSON object per line, no blank line, a unique filesystem-safe ``name`` (the run id);
* ``control_path`` for a precomputed control, never Transfer 1's ``input_control`` (silently ignored);
* ``guidance`` an integer, ``sigma_max`` a string (or absent);
* no key outside upstream's schema (unknown top-level keys are errors);
* paths relative to the spec file's folder (upstream resolves them from there).
"""
from __future__ import annotations

import re
from typing import Any

import orjson

from cosmoskit_transfer25 import contract

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# Upstream's sample fields (InferenceArguments), the only top-level keys a sample may hold (§4).
SAMPLE_KEYS = frozenset({
    "name", "prompt", "prompt_path", "negative_prompt", "seed", "guidance", "video_path", "max_frames",
    "context_frame_index", "image_context_path", "num_conditional_frames", "resolution", "sigma_max",
    "num_video_frames_per_chunk", "num_steps", "show_control_condition", "show_input", "keep_input_resolution",
    "edge", "depth", "vis", "seg", "guided_generation_mask", "guided_generation_step_threshold",
    "guided_generation_foreground_labels",
})
BLOCK_KEYS = frozenset({"control_path", "control_weight", "mask_path", "mask_prompt", "preset_edge_threshold",
                        "preset_blur_strength", "control_prompt"})


def sample(
    name: str, prompt: str, params: dict[str, Any], video: str, controls: dict[str, str | None]
) -> dict[str, Any]:
    """One sample: every generation field written explicitly.  ``controls`` maps each weighted control to
    its precomputed video (a path relative to the spec's folder) or None (computed on the fly)."""
    if not SAFE_NAME.match(name):
        raise ValueError(f"sample name {name!r} is not filesystem-safe")
    out: dict[str, Any] = {
        "name": name,
        "prompt": prompt,
        "video_path": video,
        "seed": int(params["seed"]),
        "guidance": int(params["guidance"]),
        "num_steps": int(params["num_steps"]),
        "resolution": contract.RESOLUTION,
        "keep_input_resolution": True,
        "num_video_frames_per_chunk": contract.CHUNK_FRAMES,
        "num_conditional_frames": contract.CONDITIONAL_FRAMES,
    }
    if params.get("negative_prompt"):
        out["negative_prompt"] = params["negative_prompt"]
    if params.get("sigma_max") is not None:
        out["sigma_max"] = contract.sigma_text(params["sigma_max"])
    presets = {"edge": params.get("canny_threshold"), "vis": params.get("blur_strength")}
    for key in contract.CONTROLS:
        if key not in params["weights"]:
            continue
        block: dict[str, Any] = {"control_weight": float(params["weights"][key])}
        path = controls.get(key)
        if path:
            block["control_path"] = path
        elif key in contract.PRESET_KEY and presets[key]:
            block[contract.PRESET_KEY[key]] = presets[key]
        out[key] = block
    return out


def jsonl(samples: list[dict[str, Any]]) -> bytes:
    """One compact object per line and no blank line anywhere (upstream reads every line, §4)."""
    names = [s["name"] for s in samples]
    if len(set(names)) != len(names):
        raise ValueError("sample names must be unique in a batch")
    return b"\n".join(orjson.dumps(s) for s in samples) + b"\n"


def problems(line: dict[str, Any]) -> list[str]:
    """What upstream would refuse or silently ignore in one sample (the tests' own contract check)."""
    found = [f"unknown top-level key {k!r}" for k in line if k not in SAMPLE_KEYS]
    if not isinstance(line.get("name"), str) or not SAFE_NAME.match(line["name"]):
        found.append("name missing or not filesystem-safe")
    if not line.get("prompt") and not line.get("prompt_path"):
        found.append("no prompt")
    if not line.get("video_path"):
        found.append("no video_path")
    if "guidance" in line and (isinstance(line["guidance"], bool) or not isinstance(line["guidance"], int)):
        found.append("guidance is not an integer")
    if "sigma_max" in line and not isinstance(line["sigma_max"], str):
        found.append("sigma_max is not a string")
    hints = [k for k in contract.CONTROLS if k in line]
    if not hints:
        found.append("no control block")
    for key in hints:
        block = line[key]
        for k in block:
            if k not in BLOCK_KEYS:
                found.append(f"{key}.{k} is silently ignored upstream")
        w = block.get("control_weight", 1.0)
        if not isinstance(w, (int, float)) or not 0 <= w <= 1:
            found.append(f"{key}.control_weight {w!r} is outside 0..1")
    return found
