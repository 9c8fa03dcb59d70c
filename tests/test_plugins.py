"""The plugin system, for real: a third-party package installed with pip, the real console script,
COSMOSKIT_LOAD_PLUGINS."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cosmoskit
from cosmoskit._core import plugins
from cosmoskit._core.errors import CosmoskitError
from cosmoskit._core.strategy import BatchingStrategy

from conftest import in_process_plugins, run_cli

HERE = Path(__file__).resolve().parent
HELLO_SRC = HERE / "thirdparty_plugin"


def pip_install(src: Path, target: Path) -> Path:
    """``pip install --no-deps --no-build-isolation --target TARGET SRC`` from a copy (setuptools builds in-tree)."""
    copy = target.parent / f"src-{src.name}"
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--no-index", "--target", str(target), str(copy)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, (
        f"pip could not build {src.name} (the test venv needs setuptools>=70.1 or `wheel`):\n{proc.stderr[-3000:]}")
    return target


def make_package(root: Path, dist: str, ep_name: str, module: str, body: str) -> Path:
    pkg = root / dist
    (pkg / module).mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "1.0"

        [project.entry-points.cosmoskit]
        {ep_name} = "{module}"

        [tool.setuptools]
        packages = ["{module}"]
        """))
    (pkg / module / "__init__.py").write_text(textwrap.dedent(body))
    return pkg


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Install targets: the hello plugin; a plugin clashing with its strategy name; another dist reusing `hello`."""
    root = tmp_path_factory.mktemp("plugin-sites")
    hello = pip_install(HELLO_SRC, root / "hello" / "site")
    clash = make_package(root / "pkgs", "cosmoskit-clash", "clash", "cosmoskit_clash", """\
        import cosmoskit
        from cosmoskit._core.strategy import BatchingStrategy

        class AlsoEverything(BatchingStrategy):
            name = "everything"

            def plan(self, items, model):
                return []

        @cosmoskit.hookimpl
        def register_strategies(register):
            register(AlsoEverything)
        """)
    fork = make_package(root / "pkgs", "cosmoskit-hello-fork", "hello", "cosmoskit_hello_fork", """\
        import cosmoskit

        @cosmoskit.hookimpl
        def run_finished(run):
            pass
        """)
    return {
        "hello": hello,
        "clash": pip_install(clash, root / "clash" / "site"),
        "fork": pip_install(fork, root / "fork" / "site"),
    }


def cosmoskit_cmd(*args: str, sites: list[Path] = (), load: str | None = None, cwd: Path):
    env = {"PYTHONPATH": os.pathsep.join(map(str, sites))}
    if load is not None:
        env["COSMOSKIT_LOAD_PLUGINS"] = load
    return run_cli(*args, cwd=cwd, env=env, timeout=60)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


# -- a third-party package, installed for real ------------------------------------------------


def test_thirdparty_plugin_adds_a_strategy_and_a_command(sites, tmp_path):
    hello = cosmoskit_cmd("hello", "Ada", sites=[sites["hello"]], cwd=tmp_path)
    assert hello.returncode == 0, hello.stderr
    assert "Hello, Ada!" in hello.stdout and "everything" in hello.stdout

    listed = cosmoskit_cmd("plugins", "--json", sites=[sites["hello"]], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    by_name = {p["name"]: p for p in json.loads(listed.stdout)}
    assert by_name["hello"] == {
        "name": "hello",
        "package": "cosmoskit-hello",
        "version": "0.3.1",
        "module": "cosmoskit_hello",
        "hooks": ["register_commands", "register_executors", "register_operations", "register_strategies"],
        "operations": ["echo"],
        "strategies": ["everything"],
        "executors": ["here"],
        "commands": ["hello"],
    }
    # the bundled plugins are still there, through the same door
    assert {"cosmoskit_cosmos", "cosmoskit_batching", "cosmoskit_local"} <= set(by_name)
    assert by_name["cosmoskit_local"]["package"] == "cosmoskit"

    helped = cosmoskit_cmd("--help", sites=[sites["hello"]], cwd=tmp_path)
    assert "hello" in helped.stdout and "Say hello" in helped.stdout


def test_thirdparty_operation_goes_through_the_queue_and_the_worker_on_its_own_executor(sites, tmp_path, videos):
    """The docs' Echo example, shipped by an outside package, runs end to end with no command of its own,
    on that package's own executor, planned by its own strategy."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "cosmoskit.yaml").write_text(
        f"default_executor: here\nexecutors:\n  here:\n    type: here\n    python: {sys.executable}\n"
        "batching:\n  strategy: everything\ntimeouts:\n  poll_seconds: 0.2\n")
    site = [sites["hello"]]
    created = cosmoskit_cmd("prompt", "create", "copy me", str(videos["scene"]), "--json", sites=site, cwd=project)
    assert created.returncode == 0, created.stderr
    prompt = json.loads(created.stdout)
    bad = cosmoskit_cmd("run", "create", "echo", prompt["id"], "--param", "speed=2", sites=site, cwd=project)
    assert bad.returncode == 1 and "echo has no parameter 'speed'" in bad.stderr
    helped = cosmoskit_cmd("run", "create", "--help", sites=site, cwd=project)
    assert "echo: copy the prompt's RGB video" in helped.stdout
    queued = cosmoskit_cmd("run", "create", "echo", prompt["id"], "--queue", "--json", sites=site, cwd=project)
    assert queued.returncode == 0, queued.stderr
    (run,) = json.loads(queued.stdout)
    assert run["status"] == "queued" and run["operation"] == "echo"
    listed = cosmoskit_cmd("queue", "list", "--json", sites=site, cwd=project)
    assert run["id"] in listed.stdout
    worked = cosmoskit_cmd("worker", "--once", sites=site, cwd=project)
    assert worked.returncode == 0, worked.stderr
    done = json.loads(cosmoskit_cmd("run", "show", run["id"], "--json", sites=site, cwd=project).stdout)
    assert done["status"] == "completed", done
    output = project / done["outputs"]["output.mp4"]
    assert output.read_bytes() == (videos["scene"] / "color.mp4").read_bytes()
    batch = json.loads((project / "outputs" / f"run_{run['id']}" / "command.json").read_text())
    assert batch["runtime"] == "plain" and batch["launch"][:2] == ["sh", "-c"]
    status = cosmoskit_cmd("status", "--json", "--host", "here", sites=site, cwd=project)
    assert json.loads(status.stdout)[0]["gpu_note"] == "no GPUs here (a test executor)"


def test_thirdparty_strategy_is_found_by_name_and_plans(sites, tmp_path):
    code = textwrap.dedent("""\
        from types import SimpleNamespace
        from cosmoskit._core import plugins
        from cosmoskit._core.strategy import Item

        cls = plugins.get_strategy("everything")
        items = [Item(f"rs_{i}", ("transfer",), frozenset({"depth"}), 1, 35, 0, f"2024-01-0{i + 1}") for i in range(5)]
        batches = cls().plan(items, SimpleNamespace(max_runs=2, fits=lambda controls: True))
        print([b.run_ids for b in batches], cls._plugin)
        """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(sites["hello"])})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[['rs_0', 'rs_1'], ['rs_2', 'rs_3'], ['rs_4']] hello"


# -- COSMOSKIT_LOAD_PLUGINS ----------------------------------------------------------------------


def test_empty_load_plugins_loads_none(sites, tmp_path):
    listed = cosmoskit_cmd("plugins", "--json", sites=[sites["hello"]], load="", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    human = cosmoskit_cmd("plugins", load="", cwd=tmp_path)
    assert "No plugins loaded" in human.stdout and "COSMOSKIT_LOAD_PLUGINS is empty" in human.stdout
    upscale = cosmoskit_cmd("upscale", "--help", load="", cwd=tmp_path)
    assert upscale.returncode == 2 and "No such command 'upscale'" in upscale.stderr
    # `transfer` is the core's, for any model: with none loaded it says so in one line
    transfer = cosmoskit_cmd("transfer", "ps_x", load="", cwd=tmp_path)
    assert transfer.returncode == 1 and "no loaded plugin provides a transfer operation" in transfer.stderr
    hello = cosmoskit_cmd("hello", sites=[sites["hello"]], load="", cwd=tmp_path)
    assert hello.returncode == 2 and "No such command 'hello'" in hello.stderr
    # the core commands stay
    assert cosmoskit_cmd("config", "show", "--json", load="", cwd=tmp_path).returncode == 0


def test_load_plugins_by_entry_point_name(sites, tmp_path):
    listed = cosmoskit_cmd("plugins", "--json", sites=[sites["hello"]], load="cosmoskit_local", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert [p["name"] for p in found] == ["cosmoskit_local"]
    assert found[0]["executors"] == ["local"]
    assert cosmoskit_cmd("upscale", "--help", load="cosmoskit_local", cwd=tmp_path).returncode == 2


@pytest.mark.parametrize("load, expected", [
    ("hello", ["hello"]),
    ("cosmoskit-hello", ["hello"]),
    ("cosmoskit_hello", ["hello"]),  # distribution names compare as pip compares them
    (" hello , cosmoskit_local ", ["cosmoskit_local", "hello"]),
    ("cosmoskit", ["cosmoskit_batching", "cosmoskit_cosmos", "cosmoskit_cosmos3", "cosmoskit_dropfolder",
                   "cosmoskit_local", "cosmoskit_report", "cosmoskit_runtimes", "cosmoskit_slurm", "cosmoskit_ssh",
                   "cosmoskit_transfer25", "cosmoskit_ui"]),
])
def test_load_plugins_by_distribution_or_list(sites, tmp_path, load, expected):
    listed = cosmoskit_cmd("plugins", "--json", sites=[sites["hello"]], load=load, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [p["name"] for p in json.loads(listed.stdout)] == expected


def test_load_plugins_naming_something_not_installed_is_a_clear_error(sites, tmp_path):
    line = one_line_error(cosmoskit_cmd("plugins", sites=[sites["hello"]], load="hello,helo", cwd=tmp_path))
    assert "COSMOSKIT_LOAD_PLUGINS" in line and "not installed" in line and "helo" in line
    assert "hello" not in line.replace("helo", "")


# -- duplicate names -----------------------------------------------------------------------------


def test_two_installed_packages_registering_one_strategy_name_fail_naming_both(sites, tmp_path):
    line = one_line_error(cosmoskit_cmd("plugins", sites=[sites["hello"], sites["clash"]], cwd=tmp_path))
    assert "'everything'" in line and "'hello'" in line and "'clash'" in line
    # leaving one out is the cure the message suggests
    ok = cosmoskit_cmd("plugins", "--json", sites=[sites["hello"], sites["clash"]], load="clash,cosmoskit_local",
                       cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr


def test_two_distributions_using_one_plugin_name_fail_naming_both(sites, tmp_path):
    line = one_line_error(cosmoskit_cmd("plugins", sites=[sites["hello"], sites["fork"]], cwd=tmp_path))
    assert "'hello'" in line and "cosmoskit-hello" in line and "cosmoskit-hello-fork" in line


class _Twin(BatchingStrategy):
    name = "twin"

    def plan(self, items, model):
        return []


class _TwinAgain(_Twin):
    pass


class _Registers:
    """An in-process plugin registering the given strategy classes."""

    def __init__(self, *classes: type) -> None:
        self.classes = classes

    @cosmoskit.hookimpl
    def register_strategies(self, register):
        for cls in self.classes:
            register(cls)


def test_duplicate_strategy_name_in_process_names_both_plugins(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with in_process_plugins(twin_a=_Registers(_Twin), twin_b=_Registers(_TwinAgain)):
        with pytest.raises(CosmoskitError) as info:
            plugins.get_strategies()
        message = str(info.value)
        assert "'twin'" in message and "'twin_a'" in message and "'twin_b'" in message
        assert "register_strategies" in message
        result = cli("plugins", "--json")
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1 and "'twin_a'" in result.stderr and "'twin_b'" in result.stderr
    assert "twin" not in plugins.get_strategies()


def test_one_plugin_registering_a_name_twice_is_an_error(monkeypatch):
    with (
        in_process_plugins(twin_twice=_Registers(_Twin, _TwinAgain)),
        pytest.raises(CosmoskitError, match="both 'twin_twice' and 'twin_twice'"),
    ):
        plugins.get_strategies()


# -- mistakes a plugin author makes ---------------------------------------------------------------


class _Misspelled:
    @cosmoskit.hookimpl
    def register_strategie(self, register):  # sic
        register(_Twin)


def test_misspelled_hook_fails_loudly_through_check():
    with in_process_plugins(typo_plugin=_Misspelled()):
        with pytest.raises(CosmoskitError) as info:
            plugins.check()
        message = str(info.value)
        assert "typo_plugin" in message and "register_strategie" in message
    plugins.check()  # clean again once it is gone


def test_misspelled_hook_in_an_installed_package_stops_the_cli(tmp_path):
    pkg = make_package(tmp_path / "pkgs", "cosmoskit-typo", "typo", "cosmoskit_typo", """\
        import cosmoskit

        @cosmoskit.hookimpl
        def register_comands(app):
            pass
        """)
    site = pip_install(pkg, tmp_path / "site")
    line = one_line_error(cosmoskit_cmd("plugins", sites=[site], cwd=tmp_path))
    assert "'typo'" in line and "register_comands" in line


class _Nameless(BatchingStrategy):
    description = "forgot its name"


class _NoNameAtAll:
    pass


@pytest.mark.parametrize("cls", [_Nameless, _NoNameAtAll])
def test_registered_class_without_a_name_is_an_error(cls):
    with in_process_plugins(nameless_plugin=_Registers(cls)):
        with pytest.raises(CosmoskitError) as info:
            plugins.get_strategies()
        message = str(info.value)
        assert "nameless_plugin" in message and cls.__name__ in message and "name" in message


def test_in_process_plugin_shows_in_describe_without_package():
    with in_process_plugins(inproc=_Registers(_Twin)):
        entry = {p["name"]: p for p in plugins.describe()}["inproc"]
        assert entry["package"] is None and entry["version"] is None
        assert entry["hooks"] == ["register_strategies"] and entry["strategies"] == ["twin"]
