"""``cosmos3-nano`` and ``cosmos3-super``: Cosmos 3 transfer, kind ``transfer``.

One omni model serves every control, and one process runs its samples one after another with their
own parameters (docs/models/cosmos3.md §6), so runs of any hint sets share a process; what they must
agree on is the checkpoint and the GPUs it runs on.  Always ``--parallelism-preset=latency`` (the
``throughput`` preset deadlocks transfer upstream, §3); Super, and Nano on more than one GPU, run
under ``torchrun`` with a master port of their own.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any, ClassVar

from cosmoskit.api import CosmoskitError, Operation, Outcome, PromptRecord, RunRecord, check_video
from cosmoskit_cosmos3 import contract, host, outcomes, spec
from cosmoskit_cosmos3.params import RUN_FIELDS, SECTION, parse_weights

SPEC = "batch.jsonl"
OUT = "outputs"
_EMULATOR_CHUNK = re.compile(r"sample (\d+)/(\d+) \S+ chunk (\d+)/(\d+)")  # the emulator's own progress line
SAMPLE_FILES = ("sample_args.json", "sample_outputs.json")


def master_port(batch_id: str) -> int:
    """A torchrun master port that differs between batches (each concurrent torchrun on a host needs its own,
    §3): 20000-39999, from the batch id."""
    return 20000 + int(hashlib.sha256(batch_id.encode()).hexdigest()[:8], 16) % 20000


class Cosmos3(Operation):
    """What Nano and Super share; ``size`` picks the ``cosmos3.<size>`` subsection."""

    kind = "transfer"
    batchable = True
    size: ClassVar[str] = ""
    parameters = RUN_FIELDS
    demo_weights = ({"edge": 1.0}, {"edge": 0.5, "blur": 0.5}, {"depth": 1.0, "seg": 1.0})

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.defaults = settings.section(SECTION.name, SECTION.fields)
        self.own = self.defaults[self.size]

    # -- the place ------------------------------------------------------------------------
    def model_settings(self, base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
        return host.model_settings(self.name, base, self.defaults, overrides, self.own["checkpoint"],
                                   self.own["num_gpus"])

    def requirements(self, model: dict[str, Any], runtime: str) -> list[Any]:
        return host.requirements(model, runtime, name=self.size, need_gb=self.own["cost"]["memory_base_gb"],
                                 gpus=self.own["num_gpus"])

    # -- planning -------------------------------------------------------------------------
    def validate(self, params: dict[str, Any], prompt: PromptRecord | None) -> dict[str, Any]:
        if prompt is None:
            raise CosmoskitError(f"{self.name} needs a prompt")
        rgb = Path(prompt["inputs"]["rgb"]["path"])
        if not rgb.is_file():
            raise CosmoskitError(f"the input video of prompt {prompt['id']} {rgb} is missing",
                                 hint="`cosmoskit verify` lists what moved")
        if params.get("sigma_max") is not None:
            raise CosmoskitError("Cosmos 3 transfer takes no sigma-max (it matters only for its edm sampler, "
                                 "docs/models/cosmos3.md §3)")
        d = self.defaults
        weights = parse_weights(params.get("weights") or d["weights"])
        inputs = prompt["inputs"]
        missing = [h for h in weights if h not in contract.ON_THE_FLY and contract.PROMPT_INPUT[h] not in inputs]
        if missing:
            raise CosmoskitError(
                f"{self.name} cannot compute a {' or '.join(missing)} control, and prompt {prompt['id']} has no "
                f"{' or '.join(contract.PROMPT_INPUT[h] for h in missing)} video (Cosmos 3 computes only edge and "
                "blur from the RGB video; give the others as videos, docs/models/cosmos3.md §4)")
        out: dict[str, Any] = {"weights": weights}
        for key in ("num_steps", "guidance", "control_guidance", "seed", "blur_strength", "canny_threshold",
                    "resolution", "chunk_frames", "emphasize_control_in_prompt", "num_gpus"):
            value = params.get(key)
            value = d[key] if value is None else value
            value, problem = RUN_FIELDS[key].validate(value)
            if problem:
                raise CosmoskitError(f"{key.replace('_', '-')} {problem}")
            out[key] = value
        tuned = contract.tuned(tuple(weights))
        for key in ("guidance", "control_guidance"):
            if out[key] is None:
                out[key] = tuned[key]  # written out: upstream applies it only to one-hint samples (§4)
        if out["chunk_frames"] is None:
            out["chunk_frames"] = int(tuned.get("chunk_frames", contract.CHUNK_FRAMES))
        if out["num_gpus"] is None:
            out["num_gpus"] = self.own["num_gpus"]
        if self.size == "super" and out["num_gpus"] not in (4, 8):
            raise CosmoskitError("num-gpus for cosmos3-super is 4 or 8 (Super does not fit one 80 GB GPU; torchrun "
                                 "shards it, docs/models/cosmos3.md §2)")
        out["negative_prompt"] = params.get("negative_prompt") or prompt.get("negative_prompt") or d["negative_prompt"]
        out["applied_weights"] = {h: round(w, 4) for h, w in contract.normalised(weights).items()}
        return out

    @classmethod
    def summary(cls, run: RunRecord) -> str:
        """The weights the model applies (normalised to sum 1), and what was given when that differs."""
        p = run.get("params") or {}
        given = p.get("weights") or {}
        if not given:
            return ""
        applied = contract.normalised(given)
        text = ",".join(f"{k}={v:.3g}" for k, v in applied.items())
        if any(abs(applied[k] - given[k]) > 1e-9 for k in applied):
            text += " (given " + ",".join(f"{k}={v:g}" for k, v in given.items()) + ")"
        return f"{text} g{p.get('guidance', 0):g} s{p.get('seed')}"

    def controls(self, run: RunRecord) -> tuple[str, ...]:
        return tuple((run.get("params") or {}).get("weights") or ())

    def batch_key(self, run: RunRecord, prompt: PromptRecord | None) -> tuple[Any, ...]:
        # one omni model for every hint set; per-sample fields differ freely inside a process
        key: tuple[Any, ...] = (self.name, int(run["params"].get("num_gpus") or self.own["num_gpus"]))
        if run.get("max_controls") is not None:
            # it ran out of memory on its own sample (one model serves every hint, so sharing is not the cause):
            # alone next time, rather than first in a process whose later samples it would take down again
            key += (run["id"],)
        return key

    def frames(self, run: RunRecord, prompt: PromptRecord | None) -> int:
        """The transfer's length: the first hint's own control video, else the RGB video (§5)."""
        if prompt is None:
            return contract.CHUNK_FRAMES
        inputs: dict[str, Any] = dict(prompt.get("inputs") or {})
        first = next((h for h in contract.HINTS if h in run["params"]["weights"]), "")
        video = inputs.get(contract.PROMPT_INPUT.get(first, ""))
        frames = (video or {}).get("frames") or prompt.get("frames") or contract.CHUNK_FRAMES
        return min(int(frames), contract.MAX_FRAMES)

    def chunks(self, run: RunRecord, prompt: PromptRecord | None) -> int:
        chunk = int(run["params"].get("chunk_frames") or contract.CHUNK_FRAMES)
        return contract.chunks(self.frames(run, prompt), chunk)

    def work(self, run: RunRecord, prompt: PromptRecord | None) -> float:
        """Its own hints and a third forward per step when control_guidance is not 1 (§9): the batch's other
        runs change nothing, one model serving every hint."""
        cost = self.own["cost"]
        p = run.get("params") or {}
        hints = max(1, len(p.get("weights") or ()))
        third = cost["control_guidance_factor"] if float(p.get("control_guidance", 1.0)) != 1.0 else 1.0
        return (1 + cost["hint_factor"] * (hints - 1)) * third

    def cost_settings(self) -> str:
        return f"cosmos3.{self.size}.cost"

    def cost_model(self, base: Any) -> Any:
        cost = self.own["cost"]
        return dataclasses.replace(
            base, load_base_seconds=cost["load_base_seconds"], load_per_control_seconds=0.0,
            chunk_seconds_per_step=cost["chunk_seconds_per_step"], chunk_control_factor=0.0,
            memory_base_gb=cost["memory_base_gb"], memory_per_control_gb=0.0, multi_control_networks=0,
            max_runs=self.defaults["max_runs_per_batch"])

    # -- running --------------------------------------------------------------------------
    def prepare(self, job: Any) -> list[str]:
        root = job.remote_root.rstrip("/") + "/"

        def staged(video: dict[str, Any]) -> str:
            return job.stage_input(video)[len(root):]  # relative to the spec file's folder (§4)

        samples = []
        for run in job.runs:
            prompt = job.prompts[run["prompt_id"]]
            p = run["params"]
            controls = {h: staged(prompt["inputs"][contract.PROMPT_INPUT[h]])
                        if contract.PROMPT_INPUT[h] in prompt["inputs"] else None for h in p["weights"]}
            samples.append(spec.sample(
                run["id"], prompt["text"], p, vision=staged(prompt["inputs"]["rgb"]), width=prompt["width"],
                height=prompt["height"], fps=prompt["fps"], frames=self.frames(run, prompt), controls=controls,
                extra={"cosmoskit": {"run": run["id"], "prompt": prompt["id"], "batch": job.id}}))
        job.local(SPEC).write_bytes(spec.jsonl(samples))
        gpus = int(job.runs[0]["params"].get("num_gpus") or self.own["num_gpus"])
        if gpus > 1:
            argv = ["torchrun", f"--nproc-per-node={gpus}", "--master-addr=127.0.0.1",
                    f"--master-port={master_port(job.id)}", "-m", contract.MODULE]
        else:
            argv = ["python", "-m", contract.MODULE]
        argv += ["--parallelism-preset=latency", "-i", job.remote(SPEC), "-o", job.remote(OUT),
                 "--checkpoint-path", str(job.model.get("checkpoint") or self.own["checkpoint"])]
        if not self.defaults["guardrails"]:
            argv.append("--no-guardrails")
        if not self.defaults["diffusion_cache"]:
            argv.append("--no-diffusion-cache")
        return argv

    def expected(self, run: RunRecord, prompt: PromptRecord | None) -> dict[str, Any]:
        """The output's size, length and rate the contract predicts (§5)."""
        if prompt is None:
            return {}
        width, height = contract.size(run["params"]["resolution"], prompt["width"], prompt["height"])
        return {"width": width, "height": height, "fps": float(prompt["fps"]), "frames": self.frames(run, prompt)}

    def collect(self, job: Any, exit_code: int | None, log: str) -> list[Outcome]:
        out = job.local(OUT)
        _, parts = outcomes.segments(log)
        proc = outcomes.process(log, exit_code)
        result = []
        for run in job.runs:
            name = run["id"]
            folder = out / name
            video = folder / "vision.mp4"
            status, message = outcomes.read_status(folder / "sample_outputs.json")
            part = parts.get(name, "")
            if not video.is_file() or video.stat().st_size == 0:
                problem: str | None = "no output video"
            elif contract.OUTPUTS_SAVED not in part:
                problem = f"the log never says the model saved {name}/sample_outputs.json"
            else:
                problem = check_video(video, **self.expected(run, job.prompts.get(run.get("prompt_id") or "")))
            sample = outcomes.Sample(status, message, problem, video.is_file(), (folder / "sample_args.json").is_file())
            v = outcomes.judge(sample, proc)
            files = self.files(out, folder) if v.ok else self.kept(out, folder)
            result.append(Outcome(name, v.ok, files, v.message, v.reason, v.retry))  # type: ignore[arg-type]
        return result

    @staticmethod
    def logs(out: Path) -> dict[str, str]:
        return {f"logs/{n}": str(out / n) for n in (contract.CONSOLE_LOG, contract.DEBUG_LOG) if (out / n).is_file()}

    def kept(self, out: Path, folder: Path) -> dict[str, str]:
        own = {n: str(folder / n) for n in SAMPLE_FILES if (folder / n).is_file()}
        return {**own, **self.logs(out)}

    def files(self, out: Path, folder: Path) -> dict[str, str]:
        """The run's folder: output.mp4 first, then the model's own files under their own names (§7)."""
        files = {"output.mp4": str(folder / "vision.mp4")}
        files.update({n: str(folder / n) for n in SAMPLE_FILES if (folder / n).is_file()})
        files.update({p.name: str(p) for p in sorted(folder.glob("control_*.mp4"))})
        files.update(self.logs(out))
        return files

    def run_log(self, job: Any, index: int, log: str) -> str:
        if len(job.runs) == 1:
            return log
        header, parts = outcomes.segments(log)
        return header + parts.get(job.runs[index]["id"], "(the model never reached this sample)\n")

    def progress(self, line: str) -> dict[str, Any] | None:
        m = _EMULATOR_CHUNK.search(line)
        if m:
            return {"line": int(m.group(1)) - 1, "lines": int(m.group(2)), "chunk": int(m.group(3)),
                    "chunks": int(m.group(4))}
        if "model loaded" in line or "Loaded pre-computed" in line or "Computing " in line:
            return {"phase": "loaded"}
        return None


class Nano(Cosmos3):
    name = "cosmos3-nano"
    model = "cosmos3-nano"
    size = "nano"
    description = "Cosmos 3 Nano transfer: a photoreal video from a prompt and its control videos (one GPU)"


class Super(Cosmos3):
    name = "cosmos3-super"
    model = "cosmos3-super"
    size = "super"
    description = "Cosmos 3 Super transfer: the 64B model, under torchrun on 4 or 8 GPUs"
