"""``enhance``: the Pixtral prompt upsampler on a prompt's video (docs/models/transfer1.md §10)."""
from __future__ import annotations

import re
from typing import Any, ClassVar

from cosmoskit import api
from cosmoskit.api import CosmoskitError, Field, Operation, Outcome, PromptRecord, RunRecord
from cosmoskit_cosmos import contract
from cosmoskit_cosmos.common import host_requirements, last_error, require_video, torchrun

_LOG_LINE = re.compile(r"^\[\d\d-\d\d \d\d:\d\d:\d\d\|")


def upsampled_text(log: str) -> str | None:
    """The text after the last ``Upsampled prompt:`` line, continued over lines that are not log records."""
    lines = log.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if contract.UPSAMPLED_PREFIX in lines[i]:
            text = [lines[i].split(contract.UPSAMPLED_PREFIX, 1)[1].strip()]
            for more in lines[i + 1:]:
                # the text ends at the next log record: the model's, the emulator's or our launcher's
                if _LOG_LINE.match(more) or more.startswith(("[cosmos-emulator]", "[cosmoskit-launcher]")):
                    break
                text.append(more.rstrip())
            joined = "\n".join(text).strip()
            return joined or None
    return None


def enhanced_name(parent: str, taken: set[str]) -> str:
    """``<parent>-enhanced``, numbered when taken (``-enhanced-2`` …): one naming, whatever the parent's."""
    base = f"{parent}-enhanced"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


class Enhance(Operation):
    name = "enhance"
    description = "Cosmos prompt upsampler: a richer prompt from the text and the first frames of its video"
    batchable = False  # the upsampler script takes one prompt per process
    options: ClassVar[dict[str, Any]] = {
        "offload_prompt_upsampler": Field(bool, True, "--offload_prompt_upsampler"),
    }

    parameters: ClassVar[dict[str, Any]] = {
        "overwrite": Field(bool, False,
                           "replace the prompt's text (kept in its history) instead of making a new prompt"),
        **options,
    }

    def requirements(self, model: dict[str, Any], runtime: str) -> list[Any]:
        return host_requirements(model, runtime)

    def validate(self, params: dict[str, Any], prompt: PromptRecord | None) -> dict[str, Any]:
        if prompt is None:
            raise CosmoskitError("enhance needs a prompt")
        require_video(prompt["inputs"]["rgb"]["path"], f"the input video of prompt {prompt['id']}")
        return {"overwrite": bool(params.get("overwrite")),
                "offload_prompt_upsampler": bool(params.get("offload_prompt_upsampler",
                                                            self.defaults["offload_prompt_upsampler"]))}

    def controls(self, run: RunRecord) -> tuple[str, ...]:
        return ("upsampler",)

    def frames(self, run: RunRecord, prompt: PromptRecord | None) -> int:
        return 2  # it reads the first two frames only

    def steps(self, run: RunRecord) -> int:
        return 1

    def prepare(self, job: Any) -> list[str]:
        (run,) = job.runs
        prompt = job.prompts[run["prompt_id"]]
        # torchrun even for one GPU: the script reads RANK, which plain python leaves unset (§10).
        argv = [
            *torchrun(1, contract.UPSAMPLER_SCRIPT),
            "--prompt", prompt["text"],
            "--input_video", job.stage_input(prompt["inputs"]["rgb"]),
            "--checkpoint_dir", job.model["checkpoint_dir"],
        ]
        if run["params"].get("offload_prompt_upsampler"):
            argv.append("--offload_prompt_upsampler")
        return argv

    def collect(self, job: Any, exit_code: int | None, log: str) -> list[Outcome]:
        (run,) = job.runs
        text = upsampled_text(log)
        if text:
            path = job.write_text("outputs/enhanced_prompt.txt", text + "\n")
            return [Outcome(run["id"], True, {"enhanced_prompt.txt": str(path)}, info={"text": text})]
        if any(m in log for m in contract.OOM_MARKERS):
            return [Outcome(run["id"], False, error="CUDA out of memory: " + last_error(log), reason="oom", retry=True)]
        return [Outcome(run["id"], False, error="no 'Upsampled prompt:' line: " + last_error(log), reason="crash",
                        retry=True)]

    def completed(self, tx: Any, run: RunRecord, outcome: Outcome) -> dict[str, Any]:
        text = outcome.info.get("text")
        if not text:
            return {}
        parent = tx.prompt(run["prompt_id"])
        if parent is None:
            return {}
        if run["params"].get("overwrite"):
            history = [*(parent.get("history") or []),
                       {"text": parent["text"], "replaced": api.now(), "by_run": run["id"]}]
            tx.update_prompt(parent["id"], {"text": text, "history": history})
            return {"result_prompt": parent["id"]}
        child = {k: v for k, v in parent.items() if k not in ("id", "created", "history")}
        child.update(text=text, parent_prompt=parent["id"], history=[], enhanced_by=run["id"],
                     name=enhanced_name(parent["name"], {p["name"] for p in tx.prompts()}))
        child = tx.add_prompt(child)
        return {"result_prompt": child["id"]}
