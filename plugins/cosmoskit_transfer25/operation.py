"""``transfer2.5``: Cosmos Transfer 2.5 (`examples/inference.py`), kind ``transfer``, model ``transfer2.5``.

One process runs every sample of its JSONL one after another after one model load, each with its own
seed, guidance, steps, prompt and controls (docs/models/transfer2.5.md §6), so runs share a process
whatever their per-sample parameters; what they must agree on is the model the process loads: one
control's checkpoint, or the four-branch multi-control model as soon as the batch holds more than one
control (unless ``mix_control_sets``, a run keeps the model its own controls pick).
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any

from cosmoskit.api import CosmoskitError, Operation, Outcome, PromptRecord, RunRecord, check_video
from cosmoskit_transfer25 import contract, host, outcomes, spec
from cosmoskit_transfer25.params import OPTIONS, RUN_FIELDS, guidance, parse_weights

SPEC = "batch.jsonl"
OUT = "outputs"
PASSED = ("num_steps", "seed", "sigma_max", "blur_strength", "canny_threshold", "num_gpus")
_EMULATOR_CHUNK = re.compile(r"sample (\d+)/(\d+) \S+ chunk (\d+)/(\d+)")  # the emulator's own progress line


def master_port(batch_id: str) -> int:
    """A port for torchrun's rendezvous that differs between batches (two torchruns on one host must
    not share one): 20000-39999, from the batch id."""
    return 20000 + int(hashlib.sha256(batch_id.encode()).hexdigest()[:8], 16) % 20000


class Transfer25(Operation):
    name = "transfer2.5"
    kind = "transfer"
    model = "transfer2.5"
    description = "Cosmos Transfer 2.5: a photoreal video from a prompt and its control videos"
    batchable = True
    options = OPTIONS
    parameters = RUN_FIELDS
    # what `cosmoskit demo` runs with this model, one weight set per demo prompt: all on the multi-control
    # model, so the three share one process
    demo_weights = ({"edge": 0.5, "vis": 0.5}, {"edge": 0.6, "depth": 0.4}, {"depth": 0.5, "seg": 0.5})

    # -- the place ------------------------------------------------------------------------
    def model_settings(self, base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
        return host.model_settings(base, self.defaults, overrides)

    def requirements(self, model: dict[str, Any], runtime: str) -> list[Any]:
        return host.requirements(model, runtime, need_gb=self.defaults["cost"]["memory_base_gb"], gpus=1)

    # -- planning -------------------------------------------------------------------------
    def validate(self, params: dict[str, Any], prompt: PromptRecord | None) -> dict[str, Any]:
        if prompt is None:
            raise CosmoskitError("transfer2.5 needs a prompt")
        rgb = Path(prompt["inputs"]["rgb"]["path"])
        if not rgb.is_file():
            raise CosmoskitError(f"the input video of prompt {prompt['id']} {rgb} is missing",
                                 hint="`cosmoskit verify` lists what moved")
        d = self.defaults
        out: dict[str, Any] = {"weights": parse_weights(params.get("weights") or d["weights"])}
        for key in PASSED:
            value = params.get(key)
            value = d[key] if value is None else value
            value, problem = RUN_FIELDS[key].validate(value)
            if problem:
                raise CosmoskitError(f"{key.replace('_', '-')} {problem}")
            out[key] = value
        out["guidance"] = guidance(d["guidance"] if params.get("guidance") is None else params["guidance"])
        out["negative_prompt"] = params.get("negative_prompt") or prompt.get("negative_prompt") or d["negative_prompt"]
        if out["num_gpus"] > 1 and not d["disable_guardrails"]:
            raise CosmoskitError("num-gpus above 1 needs transfer2.5.disable_guardrails: true (a guardrail block under "
                                 "context parallelism leaves the other ranks waiting forever, "
                                 "docs/models/transfer2.5.md §8)")
        return out

    @classmethod
    def summary(cls, run: RunRecord) -> str:
        p = run.get("params") or {}
        weights = ",".join(f"{k}={v:g}" for k, v in (p.get("weights") or {}).items())
        return f"{weights} g{p.get('guidance')} s{p.get('seed')}" if weights else ""

    def controls(self, run: RunRecord) -> tuple[str, ...]:
        return tuple((run.get("params") or {}).get("weights") or ())

    def loaded_model(self, run: RunRecord) -> str:
        """The checkpoint a process running this run alone loads: its control's, or the multi-control model (§6)."""
        keys = self.controls(run)
        return keys[0] if len(keys) == 1 else "multicontrol"

    def batch_key(self, run: RunRecord, prompt: PromptRecord | None) -> tuple[Any, ...]:
        # Per-sample fields (prompt, seed, guidance, steps, sigma_max, weights, presets) differ freely inside
        # one process; the GPUs it runs on and the model it loads do not.
        key: tuple[Any, ...] = (self.name, int(run["params"].get("num_gpus", 1)))
        if not self.defaults["mix_control_sets"]:
            key += (self.loaded_model(run),)
        return key

    def frames(self, run: RunRecord, prompt: PromptRecord | None) -> int:
        frames = prompt.get("frames") if prompt is not None else None
        return min(int(frames or contract.CHUNK_FRAMES), contract.MAX_FRAMES)

    def chunks(self, run: RunRecord, prompt: PromptRecord | None) -> int:
        return contract.chunks(self.frames(run, prompt))

    def cost_settings(self) -> str:
        return f"{self.name}.cost"

    def cost_model(self, base: Any) -> Any:
        """Transfer 2.5's own numbers (docs/cost-model.md): 93-frame chunks, the published H100 timing,
        65.4 GB, and the four-branch multi-control model as soon as a process holds two controls."""
        return dataclasses.replace(base, **self.defaults["cost"], multi_control_networks=len(contract.CONTROLS),
                                   max_runs=self.defaults["max_runs_per_batch"])

    # -- running --------------------------------------------------------------------------
    def prepare(self, job: Any) -> list[str]:
        root = job.remote_root.rstrip("/") + "/"

        def staged(video: dict[str, Any]) -> str:
            # relative to the spec file's folder: upstream resolves every path from there (§4)
            return job.stage_input(video)[len(root):]

        samples = []
        for run in job.runs:
            prompt = job.prompts[run["prompt_id"]]
            p = run["params"]
            controls = {k: staged(prompt["inputs"][k]) if k in prompt["inputs"] else None for k in p["weights"]}
            samples.append(spec.sample(run["id"], prompt["text"], p, staged(prompt["inputs"]["rgb"]), controls))
        job.local(SPEC).write_bytes(spec.jsonl(samples))
        first = job.runs[0]["params"]
        gpus = int(first.get("num_gpus", 1))
        if gpus > 1:
            argv = ["torchrun", f"--nproc_per_node={gpus}", f"--master_port={master_port(job.id)}", contract.SCRIPT]
        else:
            argv = ["python", contract.SCRIPT]
        # --keep-going (upstream's default, written out): a guardrail block skips its sample, the rest run
        argv += ["-i", job.remote(SPEC), "-o", job.remote(OUT), "--keep-going"]
        if self.defaults["disable_guardrails"]:
            argv.append("--disable-guardrails")
        if self.defaults["offload_guardrail_models"]:
            argv.append("--offload-guardrail-models")
        return argv

    def expected(self, prompt: PromptRecord | None) -> dict[str, Any]:
        """The output's size, length and rate the contract predicts (§5)."""
        if prompt is None:
            return {}
        width, height = contract.output_size(prompt["width"], prompt["height"])
        return {"width": width, "height": height, "fps": contract.output_fps(prompt["fps"]),
                "frames": min(prompt["frames"], contract.MAX_FRAMES)}

    def collect(self, job: Any, exit_code: int | None, log: str) -> list[Outcome]:
        out = job.local(OUT)
        debug = job.read_text(f"{OUT}/{contract.DEBUG_LOG}")
        _, debug_parts = outcomes.segments(debug)
        _, log_parts = outcomes.segments(log)
        proc = outcomes.process(log, exit_code)
        result = []
        for run in job.runs:
            name = run["id"]
            video = out / f"{name}.mp4"
            part = log_parts.get(name, "")
            if not video.is_file() or video.stat().st_size == 0:
                problem: str | None = "no output video"
            elif f"{contract.SAVED_LINE}" not in part or f"{name}.mp4" not in part:
                problem = f"the log never says the model saved {video.name}"
            else:
                problem = check_video(video, **self.expected(job.prompts.get(run.get("prompt_id") or "")))
            sample = outcomes.Sample(problem, video.is_file(), (out / f"{name}.json").is_file(),
                                     outcomes.guardrail_line(debug_parts.get(name, ""), part))
            v = outcomes.judge(sample, proc)
            files = self.files(out, name) if v.ok else self.kept(out, name)
            result.append(Outcome(name, v.ok, files, v.message, v.reason, v.retry))  # type: ignore[arg-type]
        return result

    @staticmethod
    def logs(out: Path) -> dict[str, str]:
        return {f"logs/{n}": str(out / n) for n in (contract.CONSOLE_LOG, contract.DEBUG_LOG) if (out / n).is_file()}

    def kept(self, out: Path, name: str) -> dict[str, str]:
        """What a run without a result keeps: its validated sample (blocked ones have it too) and the logs."""
        own = {f"{name}.json": str(out / f"{name}.json")} if (out / f"{name}.json").is_file() else {}
        return {**own, **self.logs(out)}

    def files(self, out: Path, name: str) -> dict[str, str]:
        """The run's folder: output.mp4 first, then the model's own sidecar files under their own names (§7)."""
        files = {"output.mp4": str(out / f"{name}.mp4")}
        for path in sorted(out.glob(f"{name}*")):
            rest = path.name[len(name):]
            if rest in (".json", ".txt") or (rest.startswith(("_control_", "_mask_")) and rest.endswith(".mp4")):
                files[path.name] = str(path)
        files.update(self.logs(out))
        return files

    def run_log(self, job: Any, index: int, log: str) -> str:
        if len(job.runs) == 1:
            return log
        header, parts = outcomes.segments(log)
        return header + parts.get(job.runs[index]["id"], "(the model never reached this sample)\n")

    def progress(self, line: str) -> dict[str, Any] | None:
        # the emulator's own chunk lines; upstream logs chunks to debug.log only (§7)
        m = _EMULATOR_CHUNK.search(line)
        if m:
            return {"line": int(m.group(1)) - 1, "lines": int(m.group(2)), "chunk": int(m.group(3)),
                    "chunks": int(m.group(4))}
        if "model loaded" in line or contract.PROCESSING.search(line):
            return {"phase": "loaded"}
        return None

