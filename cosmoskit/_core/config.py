"""Finding, reading and validating ``cosmoskit.yaml``.

The file is found by ``--config``, then ``COSMOSKIT_CONFIG``, then the current
folder and its parents (as git finds ``.git``).  The project home is the
folder that holds it, unless ``home:`` or ``COSMOSKIT_HOME`` says otherwise;
with no configuration at all a per-user data folder serves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosmoskit._core.errors import CosmoskitError
from cosmoskit._core.schema import Field, Located, apply, error, non_negative, positive

CONFIG_NAME = "cosmoskit.yaml"


def env_names(value: dict[str, Any]) -> str | None:
    """Environment names are written into a file bash sources: only real names pass."""
    from cosmoskit._core.runtime import env_name_problem

    for name in value:
        problem = env_name_problem(name)
        if problem:
            return f"key {problem}"
    return None


CORE_SCHEMA: dict[str, Any] = {
    "home": Field(
        str, None, "project home: ledger/, outputs/ and batches/ live here; relative to this file", nullable=True
    ),
    "default_executor": Field(str, "local", "executor used when a command names none"),
    "default_model": Field(
        str,
        "transfer1",
        "model `cosmoskit transfer` uses when --model names none "
        "(transfer1, transfer2.5, cosmos3-nano, cosmos3-super or a plugin's)",
    ),
    "executors": Field(dict, {}, "named places to run: each has a `type` (local, ssh, slurm …) and that type's keys"),
    "model": {
        "runtime": Field(
            str,
            "emulator",
            "how the launcher runs the model: docker, direct (the host's Python), "
            "emulator (CPU stand-in) or a plugin's runtime",
        ),
        "cosmos_repo": Field(
            str,
            "~/cosmos-transfer1",
            "the cosmos-transfer1 checkout on the GPU host (mounted at /workspace under docker)",
        ),
        "checkpoint_dir": Field(str, "~/cosmos-transfer1/checkpoints", "model checkpoints on the GPU host"),
        "docker_image": Field(str, "cosmos-transfer1:latest", "image built from the repo's Dockerfile"),
        "docker_command": Field(str, "docker", "`docker` or `sudo docker`"),
        "torchrun": Field(str, "torchrun", "torchrun executable for the direct runtime"),
        "env": Field(dict, {}, "extra environment for the model process (e.g. HF_HOME)", check=env_names),
    },
    "batching": {
        "strategy": Field(str, "optimal", "single, strict, mixed, optimal or a plugin's"),
        "objective": Field(
            str,
            "makespan",
            "with several GPU slots: makespan (finish the queue soonest, splitting a big batch across idle slots) "
            "or gpu_hours (never pay an extra model load)",
            choices=("makespan", "gpu_hours"),
        ),
        "max_runs_per_batch": Field(
            int, 16, "most runs one model load may serve (bounds what one failed batch loses)", check=positive
        ),
        "batch_size": Field(
            int, 1, "transfer.py --batch_size: lines denoised together (>1 needs equal size and length)", check=positive
        ),
        "gpu_memory_gb": Field(float, 80.0, "memory of one GPU (H100-80GB class)", check=positive),
        "cost": {
            "load_base_seconds": Field(
                float, 180.0, "model load: T5, guardrails and the 7B base (assumption; calibrate)", check=non_negative
            ),
            "load_per_control_seconds": Field(
                float,
                60.0,
                "model load: each control network, a separate 7B model (assumption; calibrate)",
                check=non_negative,
            ),
            "chunk_seconds_per_step": Field(
                float,
                12.7,
                "one 121-frame chunk, per step, one control (from T25 H100 NVL: 445.52 s / 35)",
                check=non_negative,
            ),
            "chunk_control_factor": Field(
                float,
                0.35,
                "extra generation per added control network (T1 encoder: 15 of 28 blocks)",
                check=non_negative,
            ),
            "memory_base_gb": Field(
                float,
                14.0,
                "GPU memory of the 7B base in bf16, text encoder and guardrails offloaded",
                check=non_negative,
            ),
            "memory_per_control_gb": Field(
                float, 14.0, "GPU memory of each control network (a 7B model in bf16)", check=non_negative
            ),
        },
    },
    "submit": {
        "confirm_above": Field(int, 100, "a command that makes more runs than this asks first (--yes skips)",
                               check=positive),
    },
    "timeouts": {
        "connect_seconds": Field(float, 15.0, "SSH connect and authentication", check=positive),
        "batch_seconds": Field(
            float, 6 * 3600.0, "a batch running longer is killed and its runs failed", check=positive
        ),
        "poll_seconds": Field(float, 2.0, "how often a running batch is polled", check=positive),
    },
    "worker": {
        "max_attempts": Field(int, 3, "attempts per run before it fails", check=positive),
        "backoff_seconds": Field(
            float, 10.0, "first wait after a transient host failure (doubles)", check=non_negative
        ),
        "stage_ahead": Field(
            bool,
            True,
            "while a batch runs on a GPU slot, stage the next one there and start it the moment the model exits",
        ),
    },
}


def user_dir() -> Path:
    """Per-user data folder used when no cosmoskit.yaml is found (as llm's user dir)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "cosmoskit"


def find_config(explicit: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> tuple[Path | None, str]:
    """Return (config path or None, how it was found)."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise CosmoskitError(f"--config {explicit}: no such file")
        return path.resolve(), "--config"
    env = os.environ.get("COSMOSKIT_CONFIG")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise CosmoskitError(f"COSMOSKIT_CONFIG={env}: no such file")
        return path.resolve(), "COSMOSKIT_CONFIG"
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate, "found in " + ("the current folder" if folder == here else "a parent folder")
    return None, "none found"


def read_yaml(path: Path) -> tuple[Any, Located]:
    """Parse YAML keeping the line of every key; duplicate keys are errors."""
    import yaml

    located = Located(str(path))
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise CosmoskitError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CosmoskitError(f"{where}: broken YAML: {problem}") from exc

    def walk(n: Any, prefix: str) -> None:
        if isinstance(n, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in n.value:
                key = str(key_node.value)
                path_ = f"{prefix}{key}"
                if key in seen:
                    raise CosmoskitError(f"{path}:{key_node.start_mark.line + 1}: {path_} is given twice")
                seen.add(key)
                located.lines[path_] = key_node.start_mark.line + 1
                walk(value_node, f"{path_}.")

    if node is not None:
        walk(node, "")
    return data, located


@dataclass
class Settings:
    """The effective configuration and where each value came from."""

    data: dict[str, Any]
    sources: dict[str, str]
    located: Located
    config_path: Path | None
    config_found: str
    home: Path
    home_source: str
    plugin_sections: dict[str, Any] = field(default_factory=dict)
    _sections: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict, repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, dotted: str, default: Any = None) -> Any:
        value: Any = self.data
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                return default
            value = value[part]
        return value

    def section(self, name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        """A plugin-owned top-level section (``watch:``, ``transfer:`` …), validated, defaults filled.

        Without ``schema`` the owner's registered one is used."""
        if schema is None:
            from cosmoskit._core.sections import owned_sections

            owned = owned_sections()
            if name not in owned:
                raise CosmoskitError(f"no loaded plugin defines the configuration section {name!r}")
            schema = owned[name].fields
        key = (name, id(schema))
        if key not in self._sections:
            self._sections[key] = apply(schema, self.plugin_sections.get(name), self.located, f"{name}.", self.sources)
        return self._sections[key]

    def executor_names(self) -> list[str]:
        names = list(self.data["executors"])
        if "local" not in names:
            names.insert(0, "local")
        return names

    def served_executors(self) -> list[str]:
        """What a worker serves by default: every executor listed, else the default one."""
        return list(self.data["executors"]) or [self.data["default_executor"]]

    def executor_config(self, name: str) -> dict[str, Any]:
        """The raw mapping of one named executor (``local`` exists even when not configured)."""
        executors = self.data["executors"]
        if name not in executors:
            if name == "local":
                return {"type": "local"}
            known = ", ".join(self.executor_names())
            raise CosmoskitError(f"unknown executor {name!r}; configured: {known}")
        raw = executors[name]
        if not isinstance(raw, dict):
            raise error(self.located, f"executors.{name}", "must be a mapping with a `type`")
        if raw.get("type") is None:
            raise error(self.located, f"executors.{name}", "needs a `type` (local, ssh, slurm …)")
        from cosmoskit._core import plugins

        types = plugins.get_executor_types()
        if not isinstance(raw["type"], str) or raw["type"] not in types:
            # name the file and line here: the plugins' lookup error cannot
            known = ", ".join(sorted(types)) or "none (no plugin provides one)"
            raise error(
                self.located,
                f"executors.{name}.type",
                f"is not a known executor type: {raw['type']!r} (known: {known})",
            )
        return raw

    def check_keys(self) -> None:
        """Fail on a top-level key that neither the core nor a loaded plugin defines (every command does
        this when it loads the settings, so a misspelled section is an error everywhere, not ignored)."""
        if not self.plugin_sections:
            return
        from cosmoskit._core.sections import owned_sections

        owned = owned_sections()
        for key in self.plugin_sections:
            if key not in owned:
                known = ", ".join(sorted([*CORE_SCHEMA, *owned]))
                raise error(self.located, key, f"is not a known key (known: {known})")

    def check_sections(self) -> None:
        """Everything ``config check`` checks: unknown keys, every section's values, references to plugins."""
        from cosmoskit._core.sections import owned_sections

        self.check_keys()
        owned = owned_sections()
        for name, section in owned.items():
            self.section(name, section.fields)
        self.check_references()

    def check_references(self) -> None:
        """Values that name a plugin's contribution must name a loaded one (file and line in the error)."""
        from cosmoskit._core import plugins

        def known(key: str, value: Any, names: list[str], what: str) -> None:
            # a default that names a plugin left out is not the file's mistake: it fails when used
            if value not in names and self.sources.get(key, "") != "default":
                listed = ", ".join(names) or f"none (no plugin provides a {what})"
                raise error(self.located, key, f"must be one of {listed}, not {value!r}")

        known("model.runtime", self.get("model.runtime"), list(plugins.get_runtimes()), "runtime")
        known("batching.strategy", self.get("batching.strategy"), list(plugins.get_strategies()), "batching strategy")
        known("default_model", self.get("default_model"), plugins.models("transfer"), "transfer model")
        default = self.get("default_executor")
        if default != "local" or "local" in self.data["executors"]:
            known("default_executor", default, list(self.data["executors"]), "executor")
        for name, raw in self.data["executors"].items():
            if isinstance(raw, dict) and raw.get("runtime") is not None:
                known(f"executors.{name}.runtime", raw["runtime"], list(plugins.get_runtimes()), "runtime")


def load(explicit: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Settings:
    path, how = find_config(explicit, cwd)
    sources: dict[str, str] = {}
    if path is None:
        raw: Any = {}
        located = Located(None)
    else:
        raw, located = read_yaml(path)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise CosmoskitError(f"{path}: the top level must be a mapping of keys")
    plugin_sections = {k: v for k, v in raw.items() if k not in CORE_SCHEMA}
    core = {k: v for k, v in raw.items() if k in CORE_SCHEMA}
    data = apply(CORE_SCHEMA, core, located, "", sources)

    env_home = os.environ.get("COSMOSKIT_HOME")
    if env_home:
        home, home_source = Path(env_home).expanduser(), "COSMOSKIT_HOME"
    elif data["home"]:
        assert path is not None
        home, home_source = (path.parent / Path(data["home"]).expanduser()), f"home: in {located.where('home')}"
    elif path is not None:
        home, home_source = path.parent, "the folder of " + str(path)
    else:
        home, home_source = user_dir(), "per-user data folder (no cosmoskit.yaml found)"
    home = home.resolve()
    sources["home"] = home_source
    data["home"] = str(home)
    return Settings(data, sources, located, path, how, home, home_source, plugin_sections)
