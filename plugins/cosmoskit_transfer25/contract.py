"""Facts of Cosmos Transfer 2.5's command line and files that cosmoskit relies on (docs/models/transfer2.5.md).

Pure data and pure functions: every number here names the section of the contract page it comes from.
"""
from __future__ import annotations

import math
import re

SCRIPT = "examples/inference.py"  # §3: run from the repository root, `python examples/inference.py -i … -o …`
MODEL = "transfer2.5"
HF_REPO = "nvidia/Cosmos-Transfer2.5-2B"  # §1: the checkpoints, downloaded into HF_HOME (§2)

# §4: the control blocks, in upstream's CONTROL_KEYS order; `vis` is the blur control.  All four can be
# computed on the fly from video_path (edge: Canny, vis: blur, depth: Video-Depth-Anything, seg: SAM2).
CONTROLS = ("edge", "vis", "depth", "seg")
PRESETS = ("very_low", "low", "medium", "high", "very_high")  # preset_edge_threshold / preset_blur_strength
PRESET_KEY = {"edge": "preset_edge_threshold", "vis": "preset_blur_strength"}

# §4: ranges checked before anything is queued.  guidance is an int 0-7 upstream; control_weight 0-1.
GUIDANCE_RANGE = (0, 7)
WEIGHT_RANGE = (0.0, 1.0)
SEED_RANGE = (0, 2**32 - 1)  # the seed seeds numpy too (RandomState: 0 .. 2**32-1)
STEPS_RANGE = (1, 1000)
SIGMA_RANGE = (0.0, 200.0)
GPUS_RANGE = (1, 8)  # context parallelism on one node (§3)

# §5: chunks of 93 frames, the next ones overlapping by num_conditional_frames (1); at most 5000 frames.
CHUNK_FRAMES = 93
CONDITIONAL_FRAMES = 1
MAX_FRAMES = 5000
RESOLUTION = "720"  # §5: the checkpoints are 720p

# §2 and §9: GPU memory of single-GPU inference, documented.
MEMORY_GB = 65.4

# §7: lines and files the driver reads.
SAVED_LINE = "Generated video saved to "  # SUCCESS, on stdout and console.log, once a sample's video is written
PROCESSING = re.compile(r"\[(\d+)/(\d+)\] Processing sample (\S+)")  # INFO, before each sample
GUARDRAIL_DEBUG = "GUARDRAIL BLOCKED"  # the guardrail's own line: in debug.log only (§7, §8)
GUARDRAIL_CONSOLE = "Guardrail blocked generation"  # the caller's CRITICAL line: stdout and console.log
VALIDATION_MARKERS = (  # §8: loading failures, before the model and before -o exists
    "Error validating parameters from",
    "is not unique",
    "Unsupported file extension",
    "JSONDecodeError",
    "Unrecognized options",
    "No inference samples",
)
OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError")
DEBUG_LOG = "debug.log"
CONSOLE_LOG = "console.log"


def chunks(frames: int, chunk: int = CHUNK_FRAMES, overlap: int = CONDITIONAL_FRAMES) -> int:
    """§5: `1 if T <= C else 1 + ceil((T - C) / (C - n))`; a shorter input is padded to one chunk."""
    frames = min(max(frames, 1), MAX_FRAMES)
    if frames <= chunk:
        return 1
    return 1 + math.ceil((frames - chunk) / (chunk - overlap))


def output_size(width: int, height: int) -> tuple[int, int]:
    """§5: with keep_input_resolution (written true) the input's W x H, each rounded down to even."""
    return max(2, width - width % 2), max(2, height - height % 2)


def output_fps(fps: float) -> int:
    """§5: the input's own rate as upstream reads it, `int(meta["fps"])` (29.97 gives 29)."""
    return max(1, int(fps))


def sigma_text(value: float) -> str:
    """§4: sigma_max is a string field ("80"); a JSON number is a string_type error."""
    return format(float(value), "g")
