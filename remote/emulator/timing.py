"""Simulated durations: how many chunks a sample takes and how long the emulator sleeps.

Pure functions, tested as tables (tests/test_emulator_timing.py).  The knobs come from the
``emulator:`` section of cosmoskit.yaml through COSMOS_EMULATOR_* variables; each model
counts chunks by its own rule (docs/models/*.md):

  Transfer 1    121-frame chunks, 1 frame of overlap            max(1, ceil((T-1)/120))
  Transfer 2.5  93-frame chunks, overlap num_conditional_frames 1 if T<=93 else 1+ceil((T-93)/(93-n))
  Cosmos 3      num_video_frames_per_chunk rounded up to 4k+1,   same rule with that C
                overlap num_conditional_frames

``seconds_per_chunk`` is the time of one chunk of the model at hand, at 35 steps, with one
control; the control count scales it as Transfer 1 always did (proportional, or
``1 + f*(n-1)`` with COSMOS_EMULATOR_CONTROL_FACTOR=f).
"""

from __future__ import annotations

import math


def transfer25_chunks(frames, chunk=93, overlap=1):
    """Transfer 2.5 (inference_pipeline.py _get_num_chunks): inputs shorter than a chunk are padded to one."""
    if frames <= chunk:
        return 1
    return 1 + math.ceil((frames - chunk) / (chunk - overlap))


def round_chunk_4k1(chunk, temporal_compression=4):
    """Cosmos 3 rounds the chunk length up to 4k+1 frames (the tokenizer compresses time by 4)."""
    return math.ceil((chunk - 1) / temporal_compression) * temporal_compression + 1


def cosmos3_chunks(frames, chunk=93, overlap=1):
    """Cosmos 3 (transfer.py _get_num_chunks) -> (chunks, chunk length used).

    A one-frame input uses a one-frame chunk.  Raises ValueError as upstream when the overlap
    does not leave a stride (only reached when more than one chunk is needed)."""
    c = round_chunk_4k1(1 if frames == 1 else chunk)
    if frames <= c:
        return 1, c
    stride = c - overlap
    if stride <= 0:
        raise ValueError("num_conditional_frames must be smaller than num_video_frames_per_chunk")
    return 1 + math.ceil((frames - c) / stride), c


def control_scale(n_controls, control_factor=None):
    """How much one chunk costs with n control networks, relative to one."""
    n = max(1, n_controls)
    return n if control_factor is None else 1 + control_factor * (n - 1)


def chunk_seconds(seconds_per_chunk, steps, n_controls, control_factor=None, extra=1.0):
    """Sleep for one chunk: seconds_per_chunk x steps/35 x control_scale x extra."""
    return seconds_per_chunk * (steps / 35.0) * control_scale(n_controls, control_factor) * extra


def load_seconds(load, per_control, networks):
    """Simulated model load: a base time plus one share per control network loaded."""
    return load + per_control * networks
