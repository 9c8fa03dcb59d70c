"""``upscale``: the 4K upscaler, transfer.py with an ``upscale`` control (docs/models/transfer1.md §10)."""
from __future__ import annotations

from typing import Any, ClassVar

from cosmoskit import api
from cosmoskit.api import CosmoskitError, Field, Operation, Outcome, PromptRecord, RunRecord, between
from cosmoskit_cosmos import contract
from cosmoskit_cosmos.common import (
    classify,
    flag_args,
    host_requirements,
    not_a_result,
    require_video,
    split_log,
    torchrun,
)


class Upscale(Operation):
    name = "upscale"
    description = "Cosmos Transfer 1 4K upscaler: 3x the resolution bucket of a video or a finished run"
    batchable = False  # transfer.py forces batch_size 1 with an upscale control (PR #138)
    needs_prompt = False
    options: ClassVar[dict[str, Any]] = {
        "control_weight": Field(float, 0.5, "weight of the upscale control, 0..1", check=between(0, 1)),
        "num_steps": Field(int, 10, "diffusion steps (the upscaler docs use 10), 1..1000",
                           check=between(*contract.STEPS_RANGE)),
        "guidance": Field(float, 7.0, "classifier-free guidance, passed explicitly", check=between(0, 20)),
        "seed": Field(int, 1, "random seed, 0..2**32-1", check=between(*contract.SEED_RANGE)),
        "offload_text_encoder_model": Field(bool, True, "--offload_text_encoder_model"),
        "num_gpus": Field(int, 1, "context-parallel GPUs, 1..16", check=between(*contract.GPUS_RANGE)),
    }

    parameters: ClassVar[dict[str, Any]] = {
        "video": Field(str, None, "the video to upscale (a path; `cosmoskit upscale --from-run` fills it in)"),
        "prompt": Field(str, None, "an optional guiding prompt", nullable=True),
        **options,
    }

    def requirements(self, model: dict[str, Any], runtime: str) -> list[Any]:
        return host_requirements(model, runtime)

    def validate(self, params: dict[str, Any], prompt: PromptRecord | None) -> dict[str, Any]:
        d = self.defaults
        source = params.get("video")
        if not source:
            raise CosmoskitError("upscale needs --from-run RUN or --video PATH")
        path = require_video(source if isinstance(source, str) else source["path"], "the video to upscale")
        info = api.probe(path)
        out: dict[str, Any] = {
            "video": {"path": str(path.resolve()), "sha256": api.sha256_file(path), "bytes": path.stat().st_size,
                      **info.as_dict()},
            "source_run": params.get("source_run"),
            "prompt": params.get("prompt") or None,
        }
        for key in ("control_weight", "num_steps", "guidance", "seed", "offload_text_encoder_model", "num_gpus"):
            value = params.get(key)
            value, problem = self.options[key].validate(d[key] if value is None else value)
            if problem:
                raise CosmoskitError(f"{key.replace('_', '-')} {problem}")
            out[key] = value
        out["fps"] = contract.fps_arg(info.fps)
        return out

    def controls(self, run: RunRecord) -> tuple[str, ...]:
        return ("upscale",)

    def frames(self, run: RunRecord, prompt: PromptRecord | None) -> int:
        return int(run["params"]["video"]["frames"])

    def prepare(self, job: Any) -> list[str]:
        (run,) = job.runs
        p = run["params"]
        spec: dict[str, Any] = {"input_video_path": job.stage_input(p["video"]),
                                "upscale": {"control_weight": p["control_weight"]}}
        if p.get("prompt"):
            spec["prompt"] = p["prompt"]
        job.write_json("spec.json", spec)
        argv = [
            *torchrun(p["num_gpus"], contract.TRANSFER_SCRIPT),
            "--checkpoint_dir", job.model["checkpoint_dir"],
            "--video_save_folder", job.remote("outputs"),
            "--controlnet_specs", job.remote("spec.json"),
            "--video_save_name", "output",
        ]
        argv += flag_args(p, ["num_steps", "guidance", "seed", "fps", "num_gpus"])
        if p.get("offload_text_encoder_model"):
            argv.append("--offload_text_encoder_model")
        return argv

    def collect(self, job: Any, exit_code: int | None, log: str) -> list[Outcome]:
        (run,) = job.runs
        video = job.local("outputs/output.mp4")
        source = run["params"]["video"]
        width, height = contract.bucket(source["width"], source["height"])
        problem = not_a_result(video, log, width=width * contract.UPSCALE_FACTOR,
                               height=height * contract.UPSCALE_FACTOR, fps=run["params"].get("fps"),
                               frames=min(source["frames"], contract.MAX_FRAMES))
        if problem is None:
            return [Outcome(run["id"], True, {"upscaled.mp4": str(video)})]
        _header, segments = split_log(log)
        reason, message, retry = classify(segments[0] if segments else "", log, exit_code)
        return [Outcome(run["id"], False, error=message, reason=reason, retry=retry)]

    def progress(self, line: str) -> dict[str, Any] | None:
        from cosmoskit_cosmos.transfer import Transfer

        # same model, same log lines: Transfer's parser, which reads nothing of its instance
        return Transfer.progress(self, line)  # type: ignore[arg-type]
