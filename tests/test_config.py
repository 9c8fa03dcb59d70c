"""cosmoskit.yaml: discovery, the project home, where each value came from, and one-line errors with file and line."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest

import cosmoskit
from cosmoskit._core.schema import Field
from cosmoskit_local.executor import LocalExecutor

from conftest import in_process_plugins, run_cli, write_config


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def show(cli, *args: str) -> dict:
    result = cli(*args, "config", "show", "--json")
    assert result.exit_code == 0, result
    return result.json()


def one_line(result) -> str:
    """A user-facing error: exit 1, nothing on stdout, exactly one line on stderr."""
    assert result.exit_code == 1, result
    assert result.stdout == "", result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result
    return lines[0]


def flat(text: str) -> str:
    return " ".join(text.split())


def squash(text: str) -> str:
    """Rich wraps long lines (even inside a path): compare without any whitespace."""
    return "".join(text.split())


# -- discovery ---------------------------------------------------------------------------------


def test_discovery_order_config_option_then_env_then_cwd(cli, tmp_path, monkeypatch):
    explicit = write(tmp_path / "explicit" / "cosmoskit.yaml", "batching:\n  max_runs_per_batch: 1\n")
    from_env = write(tmp_path / "env" / "cosmoskit.yaml", "batching:\n  max_runs_per_batch: 2\n")
    here = write(tmp_path / "cwd" / "cosmoskit.yaml", "batching:\n  max_runs_per_batch: 3\n")
    monkeypatch.chdir(here.parent)

    got = show(cli)
    assert (got["config_file"], got["settings"]["batching"]["max_runs_per_batch"]) == (str(here), 3)
    assert got["config_found"] == "found in the current folder"

    monkeypatch.setenv("COSMOSKIT_CONFIG", str(from_env))
    got = show(cli)
    assert (got["config_file"], got["settings"]["batching"]["max_runs_per_batch"]) == (str(from_env), 2)
    assert got["config_found"] == "COSMOSKIT_CONFIG"

    got = show(cli, "--config", str(explicit))
    assert (got["config_file"], got["settings"]["batching"]["max_runs_per_batch"]) == (str(explicit), 1)
    assert got["config_found"] == "--config"
    assert got["home"] == str(explicit.parent)


def test_config_two_folders_up_is_found_and_is_home(cli, tmp_path, monkeypatch):
    config = write(tmp_path / "proj" / "cosmoskit.yaml", "default_executor: local\n")
    deep = tmp_path / "proj" / "renders" / "scene1"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    got = show(cli)
    assert got["config_file"] == str(config)
    assert got["config_found"] == "found in a parent folder"
    assert got["home"] == str(config.parent)
    assert got["home_source"] == f"the folder of {config}"


def test_missing_explicit_config_is_an_error(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_line(cli("--config", str(tmp_path / "nope.yaml"), "config", "check"))
    assert "nope.yaml" in line and "no such file" in line
    monkeypatch.setenv("COSMOSKIT_CONFIG", str(tmp_path / "gone.yaml"))
    line = one_line(cli("config", "check"))
    assert "COSMOSKIT_CONFIG" in line and "gone.yaml" in line


# -- the project home --------------------------------------------------------------------------


def test_home_key_is_relative_to_the_file(cli, tmp_path, monkeypatch):
    config = write(tmp_path / "proj" / "cosmoskit.yaml", "# project\nhome: ../data/cosmos\n")
    monkeypatch.chdir(tmp_path)
    got = show(cli, "--config", str(config))
    assert got["home"] == str((tmp_path / "data" / "cosmos").resolve())
    assert got["home_source"] == f"home: in {config}:2"
    assert got["sources"]["home"] == f"home: in {config}:2"


def test_cosmoskit_home_wins_over_home_key(cli, tmp_path, monkeypatch):
    config = write(tmp_path / "proj" / "cosmoskit.yaml", "home: data\n")
    monkeypatch.chdir(config.parent)
    monkeypatch.setenv("COSMOSKIT_HOME", str(tmp_path / "elsewhere"))
    got = show(cli)
    assert got["home"] == str((tmp_path / "elsewhere").resolve())
    assert got["home_source"] == "COSMOSKIT_HOME"


def test_no_config_uses_the_per_user_folder_and_says_so(cli, tmp_path, monkeypatch):
    empty = tmp_path / "nothing" / "here"
    empty.mkdir(parents=True)
    monkeypatch.chdir(empty)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    got = show(cli)
    assert got["config_file"] is None and got["config_found"] == "none found"
    assert got["home"] == str(tmp_path / "xdg" / "cosmoskit")
    assert "per-user" in got["home_source"]
    assert all(source == "default" for key, source in got["sources"].items() if key != "home")

    human = cli("config", "show")
    assert human.exit_code == 0, human
    text = flat(human.stdout)
    assert "config file (none)" in text
    assert squash(f"home {tmp_path / 'xdg' / 'cosmoskit'}") in squash(human.stdout)
    assert "per-user data folder (no cosmoskit.yaml found)" in text

    checked = cli("config", "check")
    assert checked.exit_code == 0 and "no cosmoskit.yaml found" in flat(checked.stdout)


# -- where each value came from ----------------------------------------------------------------


def test_show_json_gives_each_keys_source(cli, project):
    write_config(project, textwrap.dedent("""\
        batching:
          strategy: single
          max_runs_per_batch: 4
        transfer:
          num_steps: 20
        """))
    config = project / "cosmoskit.yaml"
    got = show(cli)
    settings, sources = got["settings"], got["sources"]
    # FAST_CONFIG is 7 lines; the extra starts on line 8
    assert settings["batching"]["strategy"] == "single" and sources["batching.strategy"] == f"{config}:9"
    assert settings["batching"]["max_runs_per_batch"] == 4 and sources["batching.max_runs_per_batch"] == f"{config}:10"
    assert sources["model.runtime"] == f"{config}:3"
    assert sources["timeouts.poll_seconds"] == f"{config}:7" and settings["timeouts"]["poll_seconds"] == 0.2
    assert settings["transfer"]["num_steps"] == 20 and sources["transfer.num_steps"] == f"{config}:12"
    for key in ("batching.gpu_memory_gb", "batching.cost.load_base_seconds", "watch.folder", "transfer.guidance"):
        assert sources[key] == "default", key
    assert settings["batching"]["gpu_memory_gb"] == 80.0
    assert sources["executors.local"] == "default" and settings["executors"]["local"]["type"] == "local"


def test_show_human_output_lists_values_and_sources(cli, project):
    write_config(project, "batching:\n  max_runs_per_batch: 4\n")
    result = cli("config", "show")
    assert result.exit_code == 0, result
    text = flat(result.stdout)
    assert squash(f"config file {project / 'cosmoskit.yaml'}") in squash(result.stdout)
    assert "found in the current folder" in text
    assert "default" in text and "watch.folder" in text


def test_int_given_for_a_number_is_accepted(cli, project):
    write_config(project, "batching:\n  gpu_memory_gb: 24\n")
    assert show(cli)["settings"]["batching"]["gpu_memory_gb"] == 24.0


# -- one-line errors naming the key, the file and the line -------------------------------------

BAD = {
    "wrong type": ("""\
        batching:
          strategy: single
          max_runs_per_batch: lots
        """, 3, "batching.max_runs_per_batch must be an integer"),
    "wrong type of a number": ("timeouts:\n  poll_seconds: soon\n", 2, "timeouts.poll_seconds must be a number"),
    "bool is not an integer": ("worker:\n  max_attempts: yes\n", 2, "worker.max_attempts must be an integer"),
    "value out of range": ("worker:\n  max_attempts: 0\n", 2, "worker.max_attempts must be above 0"),
    "not one of the choices": ("model:\n  runtime: podman\n", 2,
                               "model.runtime must be one of docker, direct, emulator"),
    "unknown strategy": ("batching:\n  strategy: nosuch\n", 2,
                         "batching.strategy must be one of single, strict, mixed, optimal"),
    "unknown default executor": ("default_executor: nosuch\n", 1, "default_executor must be one of"),
    "environment name": ("model:\n  env:\n    'BAD NAME;touch /tmp/x': 1\n", 2,
                         "model.env key 'BAD NAME;touch /tmp/x' is not an environment variable name"),
    "section is not a mapping": ("watch: drop\n", 1, "watch must be a mapping"),
    "unknown top-level key": ("model:\n  runtime: emulator\nbatchng:\n  strategy: single\n", 3,
                              "batchng is not a known key"),
    "unknown nested key": ("watch:\n  folder: in\n  foldr: x\n", 3, "watch.foldr is not a known key"),
    "unknown deeply nested key": ("batching:\n  cost:\n    load_base_secs: 10\n", 3,
                                  "batching.cost.load_base_secs is not a known key"),
    "duplicate key": ("batching:\n  strategy: single\n  strategy: strict\n", 3, "batching.strategy is given twice"),
    "duplicate top-level key": ("watch: {}\nmodel: {}\nwatch: {}\n", 3, "watch is given twice"),
    "broken YAML": ("batching:\n  strategy: single\n  max_runs_per_batch: [1, 2\nwatch:\n  folder: x\n", 4,
                    "broken YAML"),
    "tab in YAML": ("model:\n\truntime: docker\n", 2, "broken YAML"),
    "executor without type": ("executors:\n  gpu1:\n    gpus: all\n", 2, "executors.gpu1 needs a `type`"),
    "executor with empty type": ("executors:\n  gpu1:\n    type:\n", 2, "executors.gpu1 needs a `type`"),
    "executor is not a mapping": ("executors:\n  gpu1: local\n", 2, "executors.gpu1 must be a mapping"),
    "unknown executor type": ("executors:\n  far:\n    type: teleport\n", 3,
                              "executors.far.type is not a known executor type: 'teleport'"),
    "unknown executor key": ("executors:\n  box:\n    type: local\n    gpus: all\n    sshkey: x\n", 5,
                             "executors.box.sshkey is not a known key"),
    "executor key of the wrong type": ("executors:\n  box:\n    type: local\n    python: 3\n", 4,
                                       "executors.box.python must be a string"),
    "executor gpus that are not GPUs": ("executors:\n  box:\n    type: local\n    gpus: 0,x\n", 4,
                                        "executors.box.gpus must be all, a count or GPU indices like 0,1,3"),
    "plugin-owned section": ("transfer:\n  num_steps: x\n", 2, "transfer.num_steps must be an integer"),
    "plugin-owned section, unknown key": ("upscale:\n  steps: 3\n", 2, "upscale.steps is not a known key"),
    "plugin-owned section, check": ("transfer:\n  guidance: 99\n", 2, "transfer.guidance must be between 0 and 20"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
@pytest.mark.parametrize("command", ["check", "show"])
def test_bad_config_is_one_line_with_key_file_and_line(cli, tmp_path, monkeypatch, case, command):
    text, line, problem = BAD[case]
    config = write(tmp_path / "proj" / "cosmoskit.yaml", text)
    monkeypatch.chdir(config.parent)
    message = one_line(cli("config", command))
    assert message.startswith(f"Error: {config}:{line}: "), message
    assert problem in message, message


def test_bad_config_through_the_real_console_script(tmp_path):
    config = write(tmp_path / "proj" / "cosmoskit.yaml", """\
        model:
          runtime: emulator
        batching: {strategy: single, max_runs_per_batch: "lots"}
        """)
    deep = tmp_path / "proj" / "a" / "b"
    deep.mkdir(parents=True)
    proc = run_cli("config", "check", cwd=deep, env={"COSMOSKIT_RAISE_ERRORS": ""})
    assert proc.returncode == 1, proc
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"Error: {config}:3: batching.max_runs_per_batch must be an integer, not str 'lots'"]

    good = run_cli("config", "check", cwd=deep,
                   env={"COSMOSKIT_CONFIG": str(write(tmp_path / "ok.yaml", "watch: {}\n"))})
    assert good.returncode == 0, good.stderr
    assert squash(f"OK: {tmp_path / 'ok.yaml'} is valid") in squash(good.stdout)


def test_unknown_top_level_key_names_the_known_ones(cli, project):
    write_config(project, "wtach:\n  folder: x\n")
    message = one_line(cli("config", "check"))
    assert f"{project / 'cosmoskit.yaml'}:8: wtach is not a known key" in message
    assert "watch" in message and "transfer" in message  # core and plugin-owned sections


def test_plugin_sections_are_unknown_when_their_plugin_is_not_loaded(tmp_path):
    write(tmp_path / "cosmoskit.yaml", "transfer:\n  num_steps: 20\n")
    proc = run_cli("config", "check", cwd=tmp_path, env={"COSMOSKIT_LOAD_PLUGINS": "cosmoskit_local"})
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"Error: {tmp_path / 'cosmoskit.yaml'}:1: transfer is not a known key "
        f"(known: batching, default_executor, default_model, executors, home, model, submit, timeouts, worker)"]


class _NeedsHost(LocalExecutor):
    name = "needs-host"
    description = "a test executor with a required key, like ssh's host"
    options: ClassVar[dict[str, Any]] = {"host": Field(str, None, "host name", required=True),
                                         "port": Field(int, 22, "port")}


class _ExecutorPlugin:
    @cosmoskit.hookimpl
    def register_executors(self, register):
        register(_NeedsHost)


@pytest.mark.parametrize("entry, line, problem", [
    ("  gpu:\n    type: needs-host\n    port: 2222\n", 2, "executors.gpu.host is required"),
    ("  gpu:\n    type: needs-host\n    host:\n", 4, "executors.gpu.host is required"),
    ("  gpu:\n    type: needs-host\n    host: a\n    port: '22'\n", 5, "executors.gpu.port must be an integer"),
])
def test_missing_required_executor_key(cli, tmp_path, monkeypatch, entry, line, problem):
    config = write(tmp_path / "cosmoskit.yaml", "# a host with no address\nexecutors:\n" + entry)
    monkeypatch.chdir(tmp_path)
    with in_process_plugins(needs_host_plugin=_ExecutorPlugin()):
        message = one_line(cli("config", "check"))
        assert message.startswith(f"Error: {config}:{line + 1}: {problem}"), message


def test_required_key_satisfied_is_valid(cli, tmp_path, monkeypatch):
    write(tmp_path / "cosmoskit.yaml", "executors:\n  gpu:\n    type: needs-host\n    host: gpu1.example\n")
    monkeypatch.chdir(tmp_path)
    with in_process_plugins(needs_host_plugin=_ExecutorPlugin()):
        result = cli("config", "check")
        assert result.exit_code == 0, result
        assert "2 executor(s): local, gpu" in result.stdout
        got = show(cli)
        assert got["settings"]["executors"]["gpu"] == {"type": "needs-host", "host": "gpu1.example", "port": 22}
        assert got["sources"]["executors.gpu"] == f"{tmp_path / 'cosmoskit.yaml'}:2"


def test_empty_file_is_all_defaults(cli, tmp_path, monkeypatch):
    write(tmp_path / "cosmoskit.yaml", "# nothing yet\n")
    monkeypatch.chdir(tmp_path)
    got = show(cli)
    assert got["config_file"] == str(tmp_path / "cosmoskit.yaml")
    assert got["settings"]["batching"]["strategy"] == "optimal"


def test_top_level_list_is_an_error(cli, tmp_path, monkeypatch):
    config = write(tmp_path / "cosmoskit.yaml", "- model\n- watch\n")
    monkeypatch.chdir(tmp_path)
    message = one_line(cli("config", "check"))
    assert str(config) in message and "mapping" in message
