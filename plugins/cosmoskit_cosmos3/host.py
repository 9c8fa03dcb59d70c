"""What a place needs to run Cosmos 3, and what the runtimes see there (docs/models/cosmos3.md §2).

``model_settings`` turns the ``cosmos3:`` section (and an executor's ``models: {cosmos3-nano: …}``
overrides) into ``job.model``: the documented Docker line (repository at /workspace, its own
``.venv`` volume, the cache at /root/.cache so checkpoints download once, the token through an env
file, never a command line), or the repository's own ``.venv`` for the direct runtime.
``requirements`` are the shell tests `cosmoskit status` and every launch run at the place.
"""
from __future__ import annotations

import math
import shlex
from typing import Any

from cosmoskit.api import CosmoskitError, Requirement
from cosmoskit_cosmos3 import contract
from cosmoskit_cosmos3.params import HOST_FIELDS

GENERIC = ("runtime", "docker_command", "env")  # keys of `model:` that still apply: how to run, not what


def model_settings(model: str, base: dict[str, Any], section: dict[str, Any], overrides: dict[str, Any],
                   checkpoint: str, gpus: int) -> dict[str, Any]:
    allowed = {*HOST_FIELDS, *GENERIC, "checkpoint"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise CosmoskitError(f"models.{model}: {', '.join(map(repr, unknown))} is not a setting of {model} at a "
                             f"place (known: {', '.join(sorted(allowed))})")
    own = {k: section[k] for k in HOST_FIELDS}
    for key, value in overrides.items():
        if key in HOST_FIELDS:
            checked, problem = HOST_FIELDS[key].validate(value)
            if problem:
                raise CosmoskitError(f"models.{model}.{key} {problem}")
            own[key] = checked
    if "checkpoint" in overrides:
        if not isinstance(overrides["checkpoint"], str) or not overrides["checkpoint"]:
            raise CosmoskitError(f"models.{model}.checkpoint must be a registry name or a folder")
        checkpoint = overrides["checkpoint"]
    m = {k: v for k, v in base.items() if k in GENERIC}
    m.update({k: overrides[k] for k in GENERIC if k in overrides})
    repo = str(own["repo"]).rstrip("/") or "/"
    cache = str(own["cache_dir"]).rstrip("/") or "/"
    env = dict(m.get("env") or {})
    if own["offline"]:
        env["HF_HUB_OFFLINE"] = "1"
    if m.get("runtime") == "direct":
        env["HF_HOME"] = f"{cache}/huggingface"  # in the container it is /root/.cache/huggingface already
    m.update(
        cosmos_repo=repo,
        docker_image=own["docker_image"],
        python=_in_repo(repo, own["python"]),
        torchrun=_in_repo(repo, own["torchrun"]),
        checkpoint=checkpoint,
        num_gpus=gpus,  # the GPUs one batch takes at the place (its slot: Super 4 or 8)
        env=env,
        env_file=own["env_file"],
        hf_cache=cache,
        offline=bool(own["offline"]),
        docker_mounts=[f"{repo}:/workspace", "/workspace/.venv", f"{cache}:/root/.cache"],
        docker_workdir="/workspace",
        docker_env={},
        docker_args=list(own["docker_args"]),
    )
    return m


def _in_repo(repo: str, path: str) -> str:
    return path if path.startswith(("/", "~")) else f"{repo}/{path}"


def gpu_test(need_gb: float, gpus: int) -> str:
    """At least ``gpus`` GPUs with ``need_gb`` each (nvidia-smi reports MiB).  A Slurm login node has no GPU
    to ask: there the test passes, and Slurm gives the job its GPUs (`gres`)."""
    need_mib = math.ceil(need_gb * 1e9 / 2**20)
    count = f"nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | awk '$1 + 0 >= {need_mib}' | wc -l"
    return (f"if command -v nvidia-smi >/dev/null 2>&1; then [ \"$({count})\" -ge {gpus} ]; "
            "else command -v sbatch >/dev/null 2>&1; fi")


def requirements(model: dict[str, Any], runtime: str, *, name: str, need_gb: float, gpus: int) -> list[Requirement]:
    """Repository, image or environment, the checkpoint cache, the Hugging Face token and GPU memory (§2);
    nothing for the emulator."""
    if runtime not in ("docker", "direct"):
        return []
    q = shlex.quote
    repo, cache, ckpt = model["cosmos_repo"], model["hf_cache"], str(model["checkpoint"])
    reqs = [Requirement(f"the cosmos-framework repository at {repo}", f"test -f {q(repo)}/{contract.SCRIPT_FILE}",
                        "clone github.com/NVIDIA/cosmos-framework there (pin the commit), or set cosmos3.repo")]
    if runtime == "docker":
        docker, image = str(model["docker_command"]), str(model["docker_image"])
        reqs.append(Requirement(f"the image {image}", f"{docker} image inspect {q(image)}",
                                "build it from the repository's Dockerfile (none is published), or set "
                                "cosmos3.docker_image"))
    else:
        reqs.append(Requirement(f"the repository's Python ({model['python']})", f"test -x {q(model['python'])}",
                                "`uv sync --all-extras --group=cu130-train` in the repository, or set cosmos3.python"))
        if not model.get("offline"):
            reqs.append(Requirement("uv on PATH (the checkpoints download through `uv run … hf download`)",
                                    "command -v uv", "install uv (>= 0.11.3) at the place"))
    local = ckpt.startswith(("/", "~"))
    if local:
        reqs.append(Requirement(f"the checkpoint folder {ckpt}", f"test -d {q(ckpt)}",
                                f"put the checkpoint there, or set cosmos3.{name}.checkpoint"))
    if model.get("offline") and not local:
        hub = f"{cache}/huggingface/hub/models--{contract.HF_ORG}--{ckpt}"
        reqs.append(Requirement(f"the checkpoints in the Hugging Face cache ({hub})", f"test -d {q(hub)}",
                                "run once with cosmos3.offline false to download them"))
    elif not model.get("offline"):
        reqs.append(Requirement(f"the Hugging Face cache folder {cache}", f"test -d {q(cache)} && test -w {q(cache)}",
                                "mkdir -p it, or set cosmos3.cache_dir"))
        where = f"HF_TOKEN in {model['env_file']}" if model.get("env_file") else f"{cache}/huggingface/token"
        tests = [f"test -s {q(cache + '/huggingface/token')}"]
        if model.get("env_file"):
            tests.insert(0, f"grep -q '^HF_TOKEN=.' {q(model['env_file'])}")
        reqs.append(Requirement(f"a Hugging Face token ({where})", " || ".join(tests),
                                "`hf auth login` at the place (the Cosmos3 repositories are gated: accept their "
                                "licence), or set cosmos3.env_file to a file holding HF_TOKEN=…"))
    reqs.append(Requirement(f"{gpus} GPU(s) with at least {need_gb:g} GB each", gpu_test(need_gb, gpus),
                            "run it where the GPUs have the memory (docs/models/cosmos3.md §2)"))
    return reqs
