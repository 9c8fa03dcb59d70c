"""What a place needs to run Transfer 2.5, and what the runtimes see there (docs/models/transfer2.5.md §2).

``model_settings`` turns the ``transfer2.5:`` section (and an executor's ``models: {transfer2.5: …}``
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
from cosmoskit_transfer25 import contract
from cosmoskit_transfer25.params import HOST_FIELDS

# keys of `model:` (and an executor's own) that still apply: how to run, not what to run
GENERIC = ("runtime", "docker_command", "env")


def model_settings(base: dict[str, Any], section: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(HOST_FIELDS) - set(GENERIC))
    if unknown:
        known = ", ".join([*GENERIC, *HOST_FIELDS])
        raise CosmoskitError(f"models.{contract.MODEL}: {', '.join(map(repr, unknown))} is not a setting of "
                             f"{contract.MODEL} at a place (known: {known})")
    own = {k: section[k] for k in HOST_FIELDS}
    for key, value in overrides.items():
        if key in HOST_FIELDS:
            checked, problem = HOST_FIELDS[key].validate(value)
            if problem:
                raise CosmoskitError(f"models.{contract.MODEL}.{key} {problem}")
            own[key] = checked
    m = {k: v for k, v in base.items() if k in (*GENERIC, "num_gpus")}
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
        env=env,
        env_file=own["env_file"],
        hf_cache=cache,
        offline=bool(own["offline"]),
        # the documented line (§2): the repo at /workspace, the image's own .venv kept, the cache mounted
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


def token_test(model: dict[str, Any]) -> str:
    q = shlex.quote
    tests = [f"test -s {q(model['hf_cache'] + '/huggingface/token')}"]
    if model.get("env_file"):
        tests.insert(0, f"grep -q '^HF_TOKEN=.' {q(model['env_file'])}")
    return " || ".join(tests)


def requirements(model: dict[str, Any], runtime: str, *, need_gb: float, gpus: int) -> list[Requirement]:
    """Repository, image or environment, the checkpoint cache, the Hugging Face token and GPU memory (§2);
    nothing for the emulator."""
    if runtime not in ("docker", "direct"):
        return []
    q = shlex.quote
    repo, cache = model["cosmos_repo"], model["hf_cache"]
    reqs = [Requirement(f"the cosmos-transfer2.5 repository at {repo}", f"test -f {q(repo)}/{contract.SCRIPT}",
                        f"clone github.com/nvidia-cosmos/cosmos-transfer2.5 there and `git lfs pull`, or set "
                        f"{contract.MODEL}.repo")]
    if runtime == "docker":
        docker, image = str(model["docker_command"]), str(model["docker_image"])
        reqs.append(Requirement(f"the image {image}", f"{docker} image inspect {q(image)}",
                                f"build it from the repository's Dockerfile, or set {contract.MODEL}.docker_image"))
    else:
        reqs.append(Requirement(f"the repository's Python ({model['python']})", f"test -x {q(model['python'])}",
                                f"`uv sync --extra=cu128` in the repository, or set {contract.MODEL}.python"))
    hub = f"{cache}/huggingface/hub/models--{contract.HF_REPO.replace('/', '--')}"
    if model.get("offline"):
        reqs.append(Requirement(f"the checkpoints in the Hugging Face cache ({hub})", f"test -d {q(hub)}",
                                f"run once with {contract.MODEL}.offline false to download them"))
    else:
        reqs.append(Requirement(f"the Hugging Face cache folder {cache}", f"test -d {q(cache)} && test -w {q(cache)}",
                                f"mkdir -p it, or set {contract.MODEL}.cache_dir"))
        where = f"HF_TOKEN in {model['env_file']}" if model.get("env_file") else f"{cache}/huggingface/token"
        reqs.append(Requirement(f"a Hugging Face token ({where})", token_test(model),
                                "`hf auth login` at the place (and accept nvidia/Cosmos-Guardrail1's licence), or "
                                f"set {contract.MODEL}.env_file to a file holding HF_TOKEN=…"))
    reqs.append(Requirement(f"{gpus} GPU(s) with at least {need_gb:g} GB each", gpu_test(need_gb, gpus),
                            "run it where the GPUs have the memory (docs/models/transfer2.5.md §2: 65.4 GB)"))
    return reqs
