"""``transfer``: Cosmos Transfer 1 on one prompt with control weights (docs/models/transfer1.md §3-5)."""
from __future__ import annotations

import re
from typing import Any, ClassVar

from cosmoskit.api import CosmoskitError, Field, Operation, Outcome, PromptRecord, RunRecord, between
from cosmoskit_cosmos import contract
from cosmoskit_cosmos.common import (
    classify,
    copy_generated_controls,
    flag_args,
    host_requirements,
    not_a_result,
    require_video,
    split_log,
    torchrun,
)

# transfer.py's own default negative prompt (§3.2), used unless the prompt or the configuration gives one.
DEFAULT_NEGATIVE = (
    "The video captures a game playing, with bad crappy graphics and cartoonish frames. It represents a recording "
    "of old outdated games. The lighting looks very fake. The textures are very raw and basic. The geometries are "
    "very primitive. The images are very pixelated and of poor CG quality. There are many subtitles in the footage. "
    "Overall, the video is unrealistic at all."
)

MODEL_ARGS = ["num_steps", "guidance", "seed", "sigma_max", "blur_strength", "canny_threshold", "fps", "num_gpus"]
OFFLOAD_FLAGS = ["offload_diffusion_transformer", "offload_text_encoder_model", "offload_guardrail_models"]
_PROGRESS = re.compile(r"line (\d+)/(\d+) chunk (\d+)/(\d+)")


def parse_weights(raw: Any) -> dict[str, float]:
    """Weights from ``vis=0.3,edge=0.3`` or a mapping; each 0..1, at least one above 0."""
    if isinstance(raw, str):
        pairs: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in raw.split(","))):
            if "=" not in part:
                raise CosmoskitError(f"weight {part!r} needs the form name=value (e.g. vis=0.3)")
            key, value = part.split("=", 1)
            if key.strip() in pairs:
                raise CosmoskitError(f"weights {raw!r} give {key.strip()} twice; "
                                     "one weight set names each control once")
            pairs[key.strip()] = value.strip()
        raw = pairs
    if not isinstance(raw, dict) or not raw:
        raise CosmoskitError("give at least one control weight, e.g. --weights vis=0.3,edge=0.3")
    weights: dict[str, float] = {}
    for key, value in raw.items():
        if key not in contract.CONTROLS:
            raise CosmoskitError(f"unknown control {key!r}; valid controls: {', '.join(contract.CONTROLS)}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise CosmoskitError(f"weight {key}={value!r} is not a number") from None
        if not 0.0 <= number <= 1.0 or number != number:
            raise CosmoskitError(f"weight {key}={value} is outside 0..1")
        weights[key] = number
    if not any(w > 0 for w in weights.values()):
        raise CosmoskitError("at least one control weight must be above 0")
    return {k: weights[k] for k in contract.CONTROLS if k in weights and weights[k] > 0}


def weights_problem(raw: Any) -> str | None:
    """What ``parse_weights`` would refuse, as a configuration problem (``transfer.weights: {vis: 2}``)."""
    try:
        parse_weights(raw)
    except CosmoskitError as exc:
        return f"is not a valid set of weights: {exc.message}"
    return None


class Transfer(Operation):
    name = "transfer"
    model = "transfer1"
    description = "Cosmos Transfer 1: a photoreal video from a prompt and its control videos"
    batchable = True
    options: ClassVar[dict[str, Any]] = {
        "weights": Field((dict, str), {"vis": 0.25, "edge": 0.25, "depth": 0.25, "seg": 0.25},
                         "control weights when a command gives none (vis, edge, depth, seg, keypoint; each 0..1)",
                         check=lambda value: weights_problem(value)),
        "num_steps": Field(int, 35, "diffusion steps (transfer.py default 35), 1..1000",
                           check=between(*contract.STEPS_RANGE)),
        "guidance": Field(float, 7.0, "classifier-free guidance; always passed explicitly (code default 5, docs 7)",
                          check=between(0, 20)),
        "seed": Field(int, 1, "random seed, 0..2**32-1", check=between(*contract.SEED_RANGE)),
        "sigma_max": Field(float, 70.0, "partial-denoise level; 80 or more ignores the input video",
                           check=between(0, 200)),
        "blur_strength": Field(str, "medium", "vis control preset", choices=contract.PRESETS),
        "canny_threshold": Field(str, "medium", "edge control preset", choices=contract.PRESETS),
        "negative_prompt": Field(str, DEFAULT_NEGATIVE,
                                 "negative prompt when the prompt has none (transfer.py's default)"),
        "offload_diffusion_transformer": Field(bool, False, "--offload_diffusion_transformer"),
        "offload_text_encoder_model": Field(bool, True, "--offload_text_encoder_model (T5-11B)"),
        "offload_guardrail_models": Field(bool, True, "--offload_guardrail_models"),
        "num_gpus": Field(int, 1, "context-parallel GPUs (torchrun --nproc_per_node), 1..16",
                          check=between(*contract.GPUS_RANGE)),
    }

    # -- planning ---------------------------------------------------------------
    def requirements(self, model: dict[str, Any], runtime: str) -> list[Any]:
        return host_requirements(model, runtime)

    def validate(self, params: dict[str, Any], prompt: PromptRecord | None) -> dict[str, Any]:
        if prompt is None:
            raise CosmoskitError("transfer needs a prompt")
        require_video(prompt["inputs"]["rgb"]["path"], f"the input video of prompt {prompt['id']}")
        d = self.defaults
        out: dict[str, Any] = {"weights": parse_weights(params.get("weights") or d["weights"])}
        for key in ("num_steps", "guidance", "seed", "sigma_max", "blur_strength", "canny_threshold", "num_gpus",
                    *OFFLOAD_FLAGS):
            value = params.get(key)
            value = d[key] if value is None else value
            field = self.options[key]
            value, problem = field.validate(value)
            if problem:
                raise CosmoskitError(f"{key.replace('_', '-')} {problem}")
            out[key] = value
        out["negative_prompt"] = params.get("negative_prompt") or prompt.get("negative_prompt") or d["negative_prompt"]
        out["fps"] = contract.fps_arg(prompt["fps"])
        return out

    @classmethod
    def summary(cls, run: RunRecord) -> str:
        weights = (run.get("params") or {}).get("weights") or {}
        return ",".join(f"{k}={v:g}" for k, v in weights.items())

    def cost_settings(self):
        return "batching.cost"  # Transfer 1's numbers are the configured cost model itself

    def controls(self, run: RunRecord) -> tuple[str, ...]:
        return tuple(run["params"]["weights"])

    def batch_key(self, run: RunRecord, prompt: PromptRecord | None) -> tuple[Any, ...]:
        p = run["params"]
        key: tuple[Any, ...] = ("transfer", *(p[k] for k in MODEL_ARGS), *(bool(p[k]) for k in OFFLOAD_FLAGS),
                                p["negative_prompt"])
        if self.settings.get("batching.batch_size", 1) > 1 and prompt is not None:
            # --batch_size > 1 concatenates tensors: same resolution bucket and frame count (§5)
            key += (contract.bucket(prompt["width"], prompt["height"]), min(prompt["frames"], contract.MAX_FRAMES))
        return key

    def frames(self, run: RunRecord, prompt: PromptRecord | None) -> int:
        return int((prompt.get("frames") if prompt else None) or contract.CHUNK_FRAMES)

    # -- running ----------------------------------------------------------------
    def _control_block(self, job: Any, prompt: dict[str, Any], hint: str, weight: float) -> dict[str, Any]:
        own = prompt["inputs"].get(hint)
        if own is not None:
            return {"input_control": job.stage_input(own), "control_weight": weight}
        if weight == 0:
            # A control this line does not use: point it at the line's own RGB video so the
            # preprocessor does not spend time generating a control whose weight is 0.
            return {"input_control": job.stage_input(prompt["inputs"]["rgb"]), "control_weight": 0.0}
        return {"input_control": None, "control_weight": weight}

    def prepare(self, job: Any) -> list[str]:
        runs = job.runs
        first = runs[0]["params"]
        union = [h for h in contract.CONTROLS if any(h in r["params"]["weights"] for r in runs)]
        lines = []
        for run in runs:
            prompt = job.prompts[run["prompt_id"]]
            video = job.stage_input(prompt["inputs"]["rgb"])
            blocks = {h: self._control_block(job, prompt, h, run["params"]["weights"].get(h, 0.0)) for h in union}
            lines.append({"visual_input": video, "prompt": prompt["text"], "control_overrides": blocks})
        first_prompt = job.prompts[runs[0]["prompt_id"]]
        # Top level: prompt, input video (validation reads it even in batch mode, §4) and negative prompt.
        spec: dict[str, Any] = {
            "prompt": first_prompt["text"],
            "input_video_path": lines[0]["visual_input"],
            "negative_prompt": first["negative_prompt"],
        }
        for h in union:
            spec[h] = dict(lines[0]["control_overrides"][h])
        job.write_json("spec.json", spec)
        argv = [
            *torchrun(first["num_gpus"], contract.TRANSFER_SCRIPT),
            "--checkpoint_dir", job.model["checkpoint_dir"],
            "--video_save_folder", job.remote("outputs"),
            "--controlnet_specs", job.remote("spec.json"),
        ]
        if len(runs) > 1:
            import orjson

            # one JSON object per line and no blank line anywhere, the last one included (§5)
            job.local("batch.jsonl").write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
            argv += ["--batch_input_path", job.remote("batch.jsonl")]
            batch_size = int(self.settings.get("batching.batch_size", 1))
            if batch_size > 1:
                argv += ["--batch_size", str(batch_size)]
        else:
            argv += ["--video_save_name", "output"]
        argv += flag_args(first, MODEL_ARGS)
        argv += [f"--{flag}" for flag in OFFLOAD_FLAGS if first.get(flag)]
        return argv

    def collect(self, job: Any, exit_code: int | None, log: str) -> list[Outcome]:
        job_controls = {c for r in job.runs for c in (r.get("params") or {}).get("weights", {})}
        outputs = job.local("outputs")
        _header, segments = split_log(log)
        batch_mode = len(job.runs) > 1
        outcomes: list[Outcome] = []
        for k, run in enumerate(job.runs):
            folder = outputs / f"video_{k}" if batch_mode else outputs
            # batch: video_<k>/output.mp4 + prompt.txt; single: <video_save_name>.mp4 + .txt (§7)
            video = folder / "output.mp4"
            text = folder / ("prompt.txt" if batch_mode else "output.txt")
            segment = (segments[k] if k < len(segments) else "") if batch_mode else log
            problem = self._not_a_result(video, run, job.prompts.get(run["prompt_id"] or ""), segment)
            if problem is None:
                files = {"output.mp4": str(video)}
                if text.is_file():
                    files["prompt.txt"] = str(text)
                copy_generated_controls(folder, files)
                outcomes.append(Outcome(run["id"], True, files))
            else:
                reason, message, retry = classify(segment, log, exit_code, controls=len(job_controls),
                                                  gpu_memory_gb=self.settings.get("batching.gpu_memory_gb"))
                if video.exists() and reason in ("not_reached", "crash"):
                    # it began writing, then died (a full disk, a killed process): say what is wrong with it
                    message = f"{message}; its output is not a result: {problem}"
                outcomes.append(Outcome(run["id"], False, error=message, reason=reason, retry=retry))
        batch_size = int(self.settings.get("batching.batch_size", 1))
        if batch_mode and batch_size > 1:
            _distrust_short_subbatches(outcomes, batch_size)
        return outcomes

    @staticmethod
    def _not_a_result(video: Any, run: dict[str, Any], prompt: dict[str, Any] | None, log: str) -> str | None:
        """Why this line's video is not a finished output: see ``common.not_a_result``."""
        expect: dict[str, Any] = {"fps": run["params"].get("fps")}
        if prompt is not None:
            expect["width"], expect["height"] = contract.bucket(prompt["width"], prompt["height"])
            frames = [prompt["frames"], *(v.get("frames") or prompt["frames"] for v in prompt["inputs"].values())]
            expect["frames"] = min(min(frames), contract.MAX_FRAMES)
        return not_a_result(video, log, **expect)

    def run_log(self, job: Any, index: int, log: str) -> str:
        if len(job.runs) == 1:
            return log
        header, segments = split_log(log)
        own = segments[index] if index < len(segments) else "(the model never reached this line)\n"
        return header + own

    def progress(self, line: str) -> dict[str, Any] | None:
        m = _PROGRESS.search(line)
        if m:
            return {"line": int(m.group(1)), "lines": int(m.group(2)), "chunk": int(m.group(3)),
                    "chunks": int(m.group(4))}
        if "model loaded" in line:
            return {"phase": "loaded"}
        if contract.PREPROCESSOR_LINE in line:
            return {"phase": "line"}
        return None


def _distrust_short_subbatches(outcomes: list[Outcome], size: int) -> None:
    """With --batch_size > 1 a guardrail-dropped item shifts later outputs (§8): a sub-batch
    that is missing any output may have its outputs under the wrong lines, so none of them is kept."""
    for start in range(0, len(outcomes), size):
        group = outcomes[start:start + size]
        if any(o.ok for o in group) and not all(o.ok for o in group):
            for o in group:
                o.ok, o.files, o.retry = False, {}, True
                o.reason, o.error = (
                    "shifted", "its sub-batch lost an item to the guardrail, so outputs may be shifted; rerun alone"
                )
