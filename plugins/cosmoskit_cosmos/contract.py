"""Facts of the Cosmos Transfer 1 command-line and file contract (docs/models/transfer1.md)."""
from __future__ import annotations

import math

TRANSFER_SCRIPT = "cosmos_transfer1/diffusion/inference/transfer.py"  # §3.1, run from the repo root
UPSAMPLER_SCRIPT = "cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py"  # §10

# Controls a user can weight (§4 valid_hint_keys minus upscale, and hdmap/lidar which need --is_av_sample).
CONTROLS = ("vis", "edge", "depth", "seg", "keypoint")
# Controls the preprocessor can generate from the input video when input_control is null (§4).
AUTO_GENERATED = frozenset(CONTROLS)
PRESETS = ("very_low", "low", "medium", "high", "very_high")  # --blur_strength / --canny_threshold

# §6: the five aspect-ratio buckets (W, H)
BUCKETS = {"1,1": (960, 960), "4,3": (960, 704), "3,4": (704, 960), "16,9": (1280, 704), "9,16": (704, 1280)}
MAX_FRAMES = 5000
CHUNK_FRAMES = 121  # num_video_frames; each next chunk adds 120 (num_input_frames=1 overlap)
UPSCALE_FACTOR = 3  # §10: the upscaler's output is 3x the bucket

# Lines the model (and the emulator) print that the driver reads.
UPSAMPLED_PREFIX = "Upsampled prompt:"  # §10
GUARDRAIL_LINE = "Guardrail blocked generation for entire batch."  # §8
SAVED_LINE = "Saved video to"  # transfer.py's demo loop logs it once a line's video is written
PREPROCESSOR_LINE = "running preprocessor"  # printed once per JSONL line before its work (transfer.py demo loop)
OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError")


def bucket(width: int, height: int) -> tuple[int, int]:
    """The output size the model picks for an input: the bucket with the nearest aspect ratio."""
    ratio = width / height
    best = min(BUCKETS.values(), key=lambda wh: abs(wh[0] / wh[1] - ratio))
    return best


def chunks(frames: int) -> int:
    """121-frame chunks generated for ``frames`` input frames (a short clip still costs one chunk)."""
    frames = min(max(frames, 1), MAX_FRAMES)
    return max(1, math.ceil((frames - 1) / (CHUNK_FRAMES - 1)))


def fps_arg(fps: float) -> int:
    """``--fps`` is an int in transfer.py; round the input's own rate (29.97 -> 30)."""
    return max(1, round(fps))

# Ranges every numeric parameter is checked against before anything is queued (docs/models/transfer1.md):
# the seed seeds numpy too, whose RandomState takes 0 .. 2**32 - 1; a run takes 35 steps by default and
# more than 1000 buys nothing but GPU hours; torchrun runs on one node (--nnodes=1), at most 16 GPUs.
SEED_RANGE = (0, 2**32 - 1)
STEPS_RANGE = (1, 1000)
GPUS_RANGE = (1, 16)
