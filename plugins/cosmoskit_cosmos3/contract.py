"""Facts of Cosmos 3 transfer's command line and files that cosmoskit relies on (docs/models/cosmos3.md).

Pure data and pure functions; every number names the section of the contract page it comes from.
"""
from __future__ import annotations

import math
import re

MODULE = "cosmos_framework.scripts.inference"  # §3: always `python -m …` (no console script)
SCRIPT_FILE = "cosmos_framework/scripts/inference.py"  # what a checkout holds
HF_ORG = "nvidia"  # §2: --checkpoint-path Cosmos3-Nano resolves to nvidia/Cosmos3-Nano, downloaded into HF_HOME

# §4: hint blocks, in the model's own order (weights are normalised in this order, not JSON order).
HINTS = ("edge", "blur", "depth", "seg", "wsm")
ON_THE_FLY = ("edge", "blur")  # computed from vision_path; depth, seg and wsm must be given as videos
PRESETS = ("very_low", "low", "medium", "high", "very_high")
BLUR_PRESETS = ("none", *PRESETS)
PRESET_KEY = {"edge": "preset_edge_threshold", "blur": "preset_blur_strength"}
# the prompt's own control videos a hint reads: Transfer's `vis` video is a blur control
PROMPT_INPUT = {"edge": "edge", "blur": "vis", "depth": "depth", "seg": "seg", "wsm": "wsm"}

RESOLUTIONS = ("256", "480", "720", "768")  # §4
ASPECTS = {"16,9": 16 / 9, "4,3": 4 / 3, "1,1": 1.0, "3,4": 3 / 4, "9,16": 9 / 16}
# §5: VIDEO_RES_SIZE_INFO[resolution][aspect] = (W, H); inputs are resized and center-cropped to it
SIZES = {
    "256": {"16,9": (320, 192), "4,3": (320, 256), "1,1": (256, 256), "3,4": (256, 320), "9,16": (192, 320)},
    "480": {"16,9": (832, 480), "4,3": (736, 544), "1,1": (640, 640), "3,4": (544, 736), "9,16": (480, 832)},
    "720": {"16,9": (1280, 720), "4,3": (1104, 832), "1,1": (960, 960), "3,4": (832, 1104), "9,16": (720, 1280)},
    "768": {"16,9": (1360, 768), "4,3": (1184, 880), "1,1": (1024, 1024), "3,4": (880, 1184), "9,16": (768, 1360)},
}

# §4: ranges.  guidance 0-7, control_guidance 0-10, weights >= 0 with a positive sum.
GUIDANCE_RANGE = (0.0, 7.0)
CONTROL_GUIDANCE_RANGE = (0.0, 10.0)
WEIGHT_RANGE = (0.0, 100.0)  # upstream has no upper bound; 100 keeps a typo from passing
SEED_RANGE = (0, 2**31 - 1)  # chunk k uses seed + k
STEPS_RANGE = (1, 1000)
CHUNK_RANGE = (5, 1001)

# §4, the transfer defaults upstream applies only when a sample has exactly one hint (_TRANSFER_DEFAULTS),
# and the video defaults otherwise; cosmoskit writes the value out (the checklist's explicit set).
ONE_HINT = {
    "edge": {"guidance": 3.0, "control_guidance": 1.5},
    "blur": {"guidance": 3.0, "control_guidance": 1.5},
    "depth": {"guidance": 3.0, "control_guidance": 1.5},
    "seg": {"guidance": 3.0, "control_guidance": 2.0},
    "wsm": {"guidance": 1.0, "control_guidance": 3.0, "chunk_frames": 101},
}
SEVERAL_HINTS = {"guidance": 6.0, "control_guidance": 1.0}
CHUNK_FRAMES = 93  # num_video_frames_per_chunk default (the cookbook writes 121)
CONDITIONAL_FRAMES = 1
SHIFT = 10.0
MAX_FRAMES = 5000

# §7: lines and files the driver reads.
ARGS_SAVED = re.compile(r"Saved sample args to '(.*)/([^/']+)/sample_args\.json'")  # the start of each sample
OUTPUTS_SAVED = "Saved transfer outputs to "  # SUCCESS, once sample_outputs.json is written
VALIDATION_MARKERS = ("Error validating parameters from", "Duplicate name:", "Unsupported file extension",
                      "Unrecognized options", "transfer inference requires", "No inference parameter files",
                      "is required")
OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError")
DEBUG_LOG = "debug.log"
CONSOLE_LOG = "console.log"


def round_chunk(frames: int) -> int:
    """§5: the chunk length is rounded up to 4k+1 frames."""
    return math.ceil((max(frames, 1) - 1) / 4) * 4 + 1


def chunks(frames: int, chunk: int = CHUNK_FRAMES, overlap: int = CONDITIONAL_FRAMES) -> int:
    """§5: `1 if T <= C else 1 + ceil((T - C) / (C - n))` with C rounded up to 4k+1."""
    c = round_chunk(1 if frames <= 1 else chunk)
    if frames <= c:
        return 1
    return 1 + math.ceil((frames - c) / (c - overlap))


def aspect(width: int, height: int) -> str:
    """The aspect bucket nearest the input's own: with vision_path the spec's aspect_ratio decides the crop (§5)."""
    ratio = width / height
    return min(ASPECTS, key=lambda k: (ASPECTS[k] - ratio) ** 2)


def size(resolution: str, width: int, height: int) -> tuple[int, int]:
    return SIZES[resolution][aspect(width, height)]


def tuned(hints: tuple[str, ...]) -> dict[str, float]:
    """Upstream's guidance and control_guidance for a hint set (§4): tuned for one hint, the video defaults else."""
    return dict(ONE_HINT[hints[0]]) if len(hints) == 1 else dict(SEVERAL_HINTS)


def normalised(weights: dict[str, float]) -> dict[str, float]:
    """The weights the model applies: each over their sum, in the model's hint order (§4)."""
    total = sum(weights.values())
    return {h: weights[h] / total for h in HINTS if h in weights}
