"""Pieces the three Cosmos operations share: the torchrun line, log splitting, outcome reasons."""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from cosmoskit.api import CosmoskitError, Reason, Requirement, check_video
from cosmoskit_cosmos import contract


def torchrun(num_gpus: int, script: str) -> list[str]:
    """The canonical launch of §3.1: ``--nproc_per_node`` must equal ``--num_gpus``."""
    return ["torchrun", f"--nproc_per_node={num_gpus}", "--nnodes=1", "--node_rank=0", script]


def flag_args(params: dict[str, Any], names: list[str]) -> list[str]:
    """``--key value`` pairs, never ``--key=value`` (§3.3: the spec would win over ``--key=value``)."""
    out: list[str] = []
    for name in names:
        value = params.get(name)
        if value is None:
            continue
        out += [f"--{name}", _fmt(value)]
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def split_log(log: str) -> tuple[str, list[str]]:
    """Split a batch log into the shared header and one segment per JSONL line.

    transfer.py logs "running preprocessor" once per line before working on it,
    so segment k holds what was printed about line k.
    """
    parts = re.split(rf"(?m)^(?=.*{re.escape(contract.PREPROCESSOR_LINE)})", log)
    return parts[0], parts[1:]


def last_error(text: str) -> str:
    """The last line that looks like an exception or an error message."""
    for line in reversed(text.strip().splitlines()):
        s = line.strip()
        if re.match(r"^[\w.]*(Error|Exception)\b", s) or "Error:" in s or s.startswith(("KeyError", "AssertionError")):
            return s[:300]
    for line in reversed(text.strip().splitlines()):
        if line.strip():
            return line.strip()[:300]
    return "no output and nothing in the log"


def classify(segment: str, whole_log: str, exit_code: int | None, *, controls: int = 1,
             gpu_memory_gb: float | None = None) -> tuple[Reason, str, bool]:
    """(reason, message, retry) for a line that produced no output."""
    if contract.GUARDRAIL_LINE in segment:
        return "guardrail", "blocked by the safety guardrail (Guardrail blocked generation)", False
    if any(m in whole_log for m in contract.OOM_MARKERS):
        return "oom", out_of_memory(whole_log, controls, gpu_memory_gb), True
    if not segment:
        header_error = last_error(whole_log)
        if "ValueError" in header_error or "usage:" in whole_log or exit_code == 2:
            return "validation", "the model rejected its input: " + header_error, False
        return "not_reached", "the model process ended before this line: " + header_error, True
    return "crash", "the model process failed on this line: " + last_error(segment), True


def out_of_memory(log: str, controls: int, gpu_memory_gb: float | None) -> str:
    """What a person can do about an out-of-memory, with the model's own line (not torchrun's last words)."""
    lines = [ln.strip() for ln in log.splitlines()]
    line = next((ln for ln in lines if contract.OOM_MARKERS[0] in ln), "") or next(
        (ln for ln in lines if any(m in ln for m in contract.OOM_MARKERS)), "")
    gpu = f" on a {gpu_memory_gb:g} GB GPU" if gpu_memory_gb else ""
    return (f"out of memory with {controls} control network(s) loaded{gpu}: it is retried with fewer controls "
            "per batch; if it fails alone, use fewer controls, the offload flags "
            "(--param offload_diffusion_transformer=true) or a bigger GPU"
            + (f" [{line[:160]}]" if line else ""))


def not_a_result(video: Path, log: str, **expect: Any) -> str | None:
    """Why a line's video is not a finished output, or None.

    The model must have said it saved it (a process that dies mid-write, on a full disk say, leaves a
    readable but truncated file), and the file must decode to the end at the size, frame count and rate
    the contract predicts (docs/models/transfer1.md) — not merely exist."""
    if not video.is_file() or video.stat().st_size == 0:
        return "no output video"
    if contract.SAVED_LINE not in log:
        return f"the log never says the model saved {video.name}"
    return check_video(video, **{k: v for k, v in expect.items() if v is not None})


def copy_generated_controls(folder: Path, files: dict[str, str]) -> None:
    """Auto-generated control videos, ``{hint}_input_control_{rank}.mp4`` (rank 0 kept)."""
    for hint in contract.AUTO_GENERATED:
        for candidate in (folder / f"{hint}_input_control_0.mp4", folder / f"{hint}_input_control.mp4"):
            if candidate.is_file():
                files[f"{hint}_input_control.mp4"] = str(candidate)
                break


def require_video(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise CosmoskitError(f"{what} {p} is missing", hint="`cosmoskit verify` lists what moved")
    return p


def copy_file(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


def host_requirements(model: dict[str, Any], runtime: str) -> list[Requirement]:
    """What a place needs to run Transfer 1 (docs/models/transfer1.md, "Preparing a host"): nothing for the
    emulator; the repository and the checkpoints for the others; the image under Docker, torchrun directly."""
    import shlex

    q = shlex.quote
    if runtime not in ("docker", "direct"):
        return []
    repo, ckpt = str(model["cosmos_repo"]), str(model["checkpoint_dir"])
    reqs = [
        Requirement(f"the cosmos-transfer1 repository at {repo}", f"test -f {q(repo)}/{contract.TRANSFER_SCRIPT}",
                    "clone github.com/nvidia-cosmos/cosmos-transfer1 there, or set model.cosmos_repo"),
        Requirement(f"the checkpoints in {ckpt}", f"test -d {q(ckpt)}/nvidia",
                    "download them (scripts/download_checkpoints.py), or set model.checkpoint_dir"),
    ]
    if runtime == "docker":
        docker, image = str(model["docker_command"]), str(model["docker_image"])
        reqs.append(Requirement(f"the image {image}", f"{docker} image inspect {q(image)}",
                                "build it from the repository's Dockerfile, or set model.docker_image"))
    else:
        reqs.append(Requirement(f"torchrun ({model['torchrun']})", f"command -v {q(str(model['torchrun']))}",
                                "install the model's Python environment, or set model.torchrun"))
    return reqs
