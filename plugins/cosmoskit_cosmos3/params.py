"""Cosmos 3 runs' parameters: the ``cosmos3:`` section of cosmoskit.yaml, shared by Nano and Super.

Everything a command gives is checked before anything is queued, one line per problem
(docs/models/cosmos3.md §4): the five hints, weights >= 0 with a positive sum (normalised by the
model), guidance 0-7, control_guidance 0-10; depth, seg and wsm only as videos.
"""
from __future__ import annotations

from typing import Any

from cosmoskit.api import CosmoskitError, Field, Section, between, non_negative, positive
from cosmoskit_cosmos3 import contract


def parse_weights(raw: Any) -> dict[str, float]:
    """``edge=0.5,depth=1`` or a mapping -> the hints with a weight above 0, in the model's hint order."""
    if isinstance(raw, str):
        pairs: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in raw.split(","))):
            if "=" not in part:
                raise CosmoskitError(f"weight {part!r} needs the form name=value (e.g. edge=0.5)")
            key, value = (x.strip() for x in part.split("=", 1))
            if key in pairs:
                raise CosmoskitError(f"weights {raw!r} give {key} twice; one weight set names each control once")
            pairs[key] = value
        raw = pairs
    if not isinstance(raw, dict) or not raw:
        raise CosmoskitError("give at least one control weight, e.g. --weights edge=1")
    weights: dict[str, float] = {}
    for key, value in raw.items():
        if key not in contract.HINTS:
            hint = " (Transfer's vis is Cosmos 3's blur)" if key == "vis" else ""
            raise CosmoskitError(f"Cosmos 3 has no control {key!r}{hint}; it knows {', '.join(contract.HINTS)}")
        try:
            number = float(value) if not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError):
            raise CosmoskitError(f"weight {key}={value!r} is not a number") from None
        lo, hi = contract.WEIGHT_RANGE
        if not lo <= number <= hi:
            raise CosmoskitError(f"weight {key}={value} is outside {lo:g}..{hi:g} (Cosmos 3 weights are >= 0 and "
                                 "normalised to sum 1)")
        weights[key] = number
    if not any(w > 0 for w in weights.values()):
        raise CosmoskitError("at least one control weight must be above 0 (Cosmos 3 needs a positive sum)")
    return {h: weights[h] for h in contract.HINTS if weights.get(h, 0) > 0}


def weights_problem(raw: Any) -> str | None:
    try:
        parse_weights(raw)
    except CosmoskitError as exc:
        return f"is not a valid set of weights: {exc.message}"
    return None


RUN_FIELDS: dict[str, Any] = {
    "weights": Field((dict, str), {"edge": 1.0}, "control weights when a command gives none (edge, blur, depth, "
                     "seg, wsm; >= 0, normalised by the model to sum 1); depth, seg and wsm need the prompt's video",
                     check=weights_problem),
    "num_steps": Field(int, 50, "diffusion steps (50 as the cookbook; upstream's default 35), 1..1000",
                       check=between(*contract.STEPS_RANGE)),
    "guidance": Field(float, None, "classifier-free guidance 0..7; null: upstream's for the run's hints (3, wsm 1, "
                      "several hints 6)", nullable=True, check=between(*contract.GUIDANCE_RANGE)),
    "control_guidance": Field(float, None, "control guidance 0..10 (not 1 adds a third forward); null: upstream's "
                              "(edge/blur/depth 1.5, seg 2, wsm 3, several hints 1)", nullable=True,
                              check=between(*contract.CONTROL_GUIDANCE_RANGE)),
    "seed": Field(int, 2026, "random seed (the cookbook's 2026), 0..2**31-1", check=between(*contract.SEED_RANGE)),
    "blur_strength": Field(str, "medium", "blur preset when the blur control is computed",
                           choices=contract.BLUR_PRESETS),
    "canny_threshold": Field(str, "medium", "edge preset when the edge control is computed", choices=contract.PRESETS),
    "negative_prompt": Field(str, None, "negative prompt when the prompt has none, written inline (null: upstream's "
                             "own)", nullable=True),
    "resolution": Field(str, "720", "output tier: 256, 480, 720 or 768 (the size is the tier's bucket for the "
                        "input's aspect)", choices=contract.RESOLUTIONS),
    "chunk_frames": Field(int, None, "num_video_frames_per_chunk, rounded up to 4k+1 by the model; null: upstream's "
                          "(93, a wsm-only run 101)", nullable=True, check=between(*contract.CHUNK_RANGE)),
    "emphasize_control_in_prompt": Field(bool, True, "append the control-emphasis sentence to the prompt "
                                         "(upstream's default since 2026-06-29)"),
    "num_gpus": Field(int, None, "GPUs of the process (torchrun --nproc-per-node above 1); null: the model's "
                      "(cosmos3.nano.num_gpus, cosmos3.super.num_gpus)", nullable=True, check=between(1, 8)),
}

HOST_FIELDS: dict[str, Any] = {
    "repo": Field(str, "~/cosmos-framework", "the NVIDIA/cosmos-framework checkout at the place; mounted at "
                  "/workspace under docker"),
    "docker_image": Field(str, "cosmos-framework:latest", "image built from the repository's Dockerfile (none is "
                          "published)"),
    "docker_args": Field(list, ["--runtime=nvidia"], "more `docker run` flags (the documented line's --runtime=nvidia)",
                         check=lambda v: None if all(isinstance(x, str) for x in v) else "must be a list of strings"),
    "cache_dir": Field(str, "~/.cache", "cache folder at the place, mounted at /root/.cache under docker: the "
                       "checkpoints download into its huggingface/ once (HF_HOME)"),
    "env_file": Field(str, None, "file at the place holding HF_TOKEN=… (docker --env-file; the direct runtime "
                      "sources it), never a command line; null: the token `hf auth login` keeps in the cache",
                      nullable=True),
    "offline": Field(bool, False, "HF_HUB_OFFLINE=1: run from the cached checkpoints without asking the Hub"),
    "python": Field(str, ".venv/bin/python", "Python of the direct runtime (relative: inside repo)"),
    "torchrun": Field(str, ".venv/bin/torchrun", "torchrun of the direct runtime (Super, or num_gpus above 1)"),
}


def cost_fields(load: float, per_step: float, memory: float, source: str) -> dict[str, Any]:
    return {
        "load_base_seconds": Field(float, load, "model load, one omni model for every control (assumption; "
                                   "calibrate)", check=non_negative),
        "chunk_seconds_per_step": Field(float, per_step, f"one 93-frame chunk per step with one hint ({source})",
                                        check=non_negative),
        "hint_factor": Field(float, 0.5, "extra generation per added hint of a run: its control tokens lengthen "
                             "the sequence (assumption)", check=non_negative),
        "control_guidance_factor": Field(float, 1.5, "generation with control_guidance not 1: a third forward to "
                                         "CFG's two (docs/models/cosmos3.md §9)", check=non_negative),
        "memory_base_gb": Field(float, memory, "GPU memory per GPU (docs/models/cosmos3.md §2)", check=non_negative),
    }


MODEL_FIELDS = {
    "nano": {
        "checkpoint": Field(str, "Cosmos3-Nano", "--checkpoint-path: a registry name or a local checkpoint folder"),
        "num_gpus": Field(int, 1, "GPUs per process (1: python -m; more: torchrun, latency preset)",
                          check=between(1, 8)),
        "cost": cost_fields(150.0, 5.84, 68.7, "derived: t2v 720p 189 frames on one H100 207.8 s (§9), x93/189, "
                            "x2 for the hint's tokens, /35 steps"),
    },
    "super": {
        "checkpoint": Field(str, "Cosmos3-Super", "--checkpoint-path: a registry name or a local checkpoint folder"),
        "num_gpus": Field(int, 4, "GPUs per process under torchrun (FSDP shards the weights; 4 or 8)",
                          choices=(4, 8)),
        "cost": cost_fields(300.0, 8.2, 48.0, "derived: Nano's x1.4, Super i2v on 4 GPUs 297 s against Nano t2v on "
                            "one 214 s (docs/cost-model.md)"),
    },
}

SETTINGS_FIELDS: dict[str, Any] = {
    "guardrails": Field(bool, False, "load the guardrail models (upstream runs none on transfer, §8: false passes "
                        "--no-guardrails and saves their load)"),
    "diffusion_cache": Field(bool, False, "SeaCache step skipping (on in upstream's CLI since 2026-08-20; false "
                             "passes --no-diffusion-cache, the cookbook's numbers)"),
    "max_runs_per_batch": Field(int, 32, "most runs one model load serves (samples run one after another)",
                                check=positive),
}

SECTION = Section("cosmos3", {**RUN_FIELDS, **HOST_FIELDS, **SETTINGS_FIELDS, **MODEL_FIELDS},
                  "Cosmos 3 transfer (cosmos3-nano, cosmos3-super): the repository, image and cache at the place, "
                  "run defaults, and each model's checkpoint, GPUs and cost figures")
