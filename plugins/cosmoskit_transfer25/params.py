"""A Transfer 2.5 run's parameters: the ``transfer2.5:`` section of cosmoskit.yaml and what ``validate`` checks.

Everything a command gives is checked here before anything is queued, one line per problem
(docs/models/transfer2.5.md §4: guidance an integer 0-7, weights 0-1, the four controls).
"""
from __future__ import annotations

from typing import Any

from cosmoskit.api import CosmoskitError, Field, between, non_negative, positive
from cosmoskit_transfer25 import contract


def parse_weights(raw: Any) -> dict[str, float]:
    """``edge=0.5,depth=0.5`` or a mapping -> the controls with a weight above 0, in upstream's key order."""
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
        if key not in contract.CONTROLS:
            hint = " (Cosmos 3 calls vis blur; Transfer 2.5 calls it vis)" if key == "blur" else ""
            raise CosmoskitError(f"Transfer 2.5 has no control {key!r}{hint}; it knows {', '.join(contract.CONTROLS)}")
        try:
            number = float(value) if not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError):
            raise CosmoskitError(f"weight {key}={value!r} is not a number") from None
        lo, hi = contract.WEIGHT_RANGE
        if not lo <= number <= hi:  # NaN fails too
            raise CosmoskitError(f"weight {key}={value} is outside {lo:g}..{hi:g} (Transfer 2.5's control_weight)")
        weights[key] = number
    if not any(w > 0 for w in weights.values()):
        raise CosmoskitError("at least one control weight must be above 0")
    return {k: weights[k] for k in contract.CONTROLS if weights.get(k, 0) > 0}


def weights_problem(raw: Any) -> str | None:
    try:
        parse_weights(raw)
    except CosmoskitError as exc:
        return f"is not a valid set of weights: {exc.message}"
    return None


def guidance(value: Any) -> int:
    """An integer 0-7 (§4: `7.5` is a validation error upstream); a whole float from a sweep (3.0) is 3."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise CosmoskitError(f"guidance {value!r} is not an integer from 0 to 7 (Transfer 2.5 takes an integer)")
    if isinstance(value, float) and not value.is_integer():
        raise CosmoskitError(f"guidance {value:g} is not an integer from 0 to 7 (Transfer 2.5 takes an integer)")
    lo, hi = contract.GUIDANCE_RANGE
    if not lo <= value <= hi:
        raise CosmoskitError(f"guidance {value:g} is outside {lo}..{hi} (Transfer 2.5 takes an integer 0-7)")
    return int(value)


RUN_FIELDS: dict[str, Any] = {
    "weights": Field((dict, str), {"edge": 1.0}, "control weights when a command gives none (edge, vis, depth, seg; "
                     "each 0..1); one control runs its own checkpoint, more run the four-branch multi-control model",
                     check=weights_problem),
    "num_steps": Field(int, 35, "diffusion steps (upstream default 35), 1..1000", check=between(*contract.STEPS_RANGE)),
    "guidance": Field(int, 3, "classifier-free guidance, an integer 0..7 (upstream default 3)",
                      check=between(*contract.GUIDANCE_RANGE)),
    "seed": Field(int, 2025, "random seed (upstream default 2025), 0..2**32-1", check=between(*contract.SEED_RANGE)),
    "sigma_max": Field(float, None, "partial-denoise level, written as a string; null: none (controls and noise)",
                       nullable=True, check=between(*contract.SIGMA_RANGE)),
    "blur_strength": Field(str, "medium", "vis preset when the vis control is computed", choices=contract.PRESETS),
    "canny_threshold": Field(str, "medium", "edge preset when the edge control is computed", choices=contract.PRESETS),
    "negative_prompt": Field(str, None, "negative prompt when the prompt has none (null: upstream's own)",
                             nullable=True),
    "num_gpus": Field(int, 1, "context-parallel GPUs (torchrun --nproc_per_node), 1..8; above 1 needs "
                      "disable_guardrails (a guardrail block would hang the other ranks, §8)",
                      check=between(*contract.GPUS_RANGE)),
}

# What may differ per place (`executors.NAME.models.transfer2.5`): the host's own paths and image.
HOST_FIELDS: dict[str, Any] = {
    "repo": Field(str, "~/cosmos-transfer2.5", "the cosmos-transfer2.5 checkout at the place (git lfs pulled); "
                  "mounted at /workspace under docker"),
    "docker_image": Field(str, "cosmos-transfer2.5:latest", "image built from the repository's Dockerfile"),
    "docker_args": Field(list, ["--runtime=nvidia"], "more `docker run` flags (the documented line's --runtime=nvidia)",
                         check=lambda v: None if all(isinstance(x, str) for x in v) else "must be a list of strings"),
    "cache_dir": Field(str, "~/.cache", "cache folder at the place, mounted at /root/.cache under docker: the "
                       "checkpoints download into its huggingface/ once (HF_HOME)"),
    "env_file": Field(str, None, "file at the place holding HF_TOKEN=… (docker --env-file; the direct runtime "
                      "sources it), never a command line; null: the token `hf auth login` keeps in the cache",
                      nullable=True),
    "offline": Field(bool, False, "HF_HUB_OFFLINE=1: run from the cached checkpoints without asking the Hub"),
    "python": Field(str, ".venv/bin/python", "Python of the direct runtime (relative: inside repo)"),
    "torchrun": Field(str, ".venv/bin/torchrun", "torchrun of the direct runtime, for num_gpus above 1"),
}

COST_FIELDS: dict[str, Any] = {
    "load_base_seconds": Field(float, 120.0, "model load: text encoder, guardrails, VAE and one 2B checkpoint "
                               "(assumption; calibrate)", check=non_negative),
    "load_per_control_seconds": Field(float, 15.0, "model load: each control checkpoint, 1 or the multi-control "
                                      "model's 4 (assumption)", check=non_negative),
    "chunk_seconds_per_step": Field(float, 12.73, "one 93-frame chunk per step: H100 NVL seg 445.52 s at 35 steps "
                                    "(docs/models/transfer2.5.md §9)", check=non_negative),
    "chunk_control_factor": Field(float, 0.2, "extra generation per added branch of the multi-control model "
                                  "(assumption: a branch every 4th block)", check=non_negative),
    "memory_base_gb": Field(float, contract.MEMORY_GB, "GPU memory of one process (documented 65.4 GB, §9)",
                            check=non_negative),
    "memory_per_control_gb": Field(float, 0.0, "GPU memory of each added branch (not published)", check=non_negative),
}

SETTINGS_FIELDS: dict[str, Any] = {
    "disable_guardrails": Field(bool, False, "--disable-guardrails: no prompt or video guardrail"),
    "offload_guardrail_models": Field(bool, False, "--offload-guardrail-models (the only offload upstream has)"),
    "mix_control_sets": Field(bool, False, "let runs with different control sets share a process: it then loads the "
                              "four-branch multi-control model for all (not strictly equal to single control, §6); "
                              "the cost model decides when that pays"),
    "max_runs_per_batch": Field(int, 32, "most runs one model load serves (samples run one after another)",
                                check=positive),
}

OPTIONS: dict[str, Any] = {**RUN_FIELDS, **HOST_FIELDS, **SETTINGS_FIELDS, "cost": COST_FIELDS}
