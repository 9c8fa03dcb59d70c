"""Shared fixtures: an isolated project folder, the CLI, small real videos."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent

FAST_CONFIG = """\
default_executor: local
model:
  runtime: emulator
emulator:
  variation: false
timeouts:
  poll_seconds: 0.2
"""


def require(tool: str) -> None:
    """Skip when a system service is missing, except in CI (COSMOSKIT_REQUIRE_SERVICES=1) where it must fail."""
    if os.environ.get("COSMOSKIT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{tool} is required here (COSMOSKIT_REQUIRE_SERVICES=1); .ci/run installs it")
    pytest.skip(f"{tool} is not installed (.ci/run installs it)")


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's own configuration, ledger or plugins' cached state."""
    for var in ("COSMOSKIT_CONFIG", "COSMOSKIT_HOME", "COSMOSKIT_LOAD_PLUGINS", "COSMOSKIT_RAISE_ERRORS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg")))
    from cosmoskit._core import context, plugins

    context.reset()
    plugins.reset()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with a fast emulator configuration; the current folder for the test."""
    home = tmp_path / "proj"
    home.mkdir()
    (home / "cosmoskit.yaml").write_text(FAST_CONFIG)
    monkeypatch.chdir(home)
    return home


def write_config(home: Path, extra: str) -> None:
    (home / "cosmoskit.yaml").write_text(FAST_CONFIG + extra)
    from cosmoskit._core import context

    context.reset()


class CLIResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.exit_code, self.stdout, self.stderr = code, out, err

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        import json

        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"<exit {self.exit_code}\nstdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-2000:]}>"


@pytest.fixture
def cli(capfd: pytest.CaptureFixture[str]):
    """Run the real ``cosmoskit`` entry point in-process; returns exit code, stdout, stderr."""
    from cosmoskit import _cli as cli_mod
    from cosmoskit._core import context

    def run(*args: str, input: str | None = None) -> CLIResult:
        context.reset()
        capfd.readouterr()
        old_stdin = sys.stdin
        if input is not None:
            import io

            sys.stdin = io.StringIO(input)
        try:
            cli_mod.main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.stdin = old_stdin
        out, err = capfd.readouterr()
        return CLIResult(code, out, err)

    return run


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The installed console script in a separate process."""
    exe = shutil.which("cosmoskit", path=os.path.dirname(sys.executable)) or shutil.which("cosmoskit")
    assert exe, "the cosmoskit console script is not installed"
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([exe, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny real videos: a scene folder with color/depth/seg, a lone mp4, a mismatched depth, a broken file."""
    from cosmoskit._core.media import make_test_video

    root = tmp_path_factory.mktemp("videos")
    scene = root / "scene"
    common = {"width": 64, "height": 36, "frames": 8, "fps": 24}
    make_test_video(scene / "color.mp4", source="testsrc2", **common)
    make_test_video(scene / "depth.mp4", source="color=c=gray", **common)
    make_test_video(scene / "seg.mp4", source="color=c=navy", **common)
    lone = make_test_video(root / "lone.mp4", source="testsrc", **{**common, "fps": 30})
    bad = root / "bad"
    make_test_video(bad / "color.mp4", source="testsrc2", **common)
    make_test_video(bad / "depth.mp4", source="color=c=gray", **{**common, "frames": 6})
    broken = root / "broken"
    broken.mkdir()
    (broken / "color.mp4").write_bytes(b"this is not a video")
    return {"scene": scene, "lone": lone, "mismatched": bad, "broken": broken, "root": root}


FAST = {
    "default_executor": "local",
    "model": {"runtime": "emulator"},
    "emulator": {"variation": False},
    "timeouts": {"poll_seconds": 0.2},
}


def configure(home: Path, **sections: Any) -> None:
    """Write cosmoskit.yaml: the fast defaults with ``sections`` merged in (one level deep)."""
    import yaml

    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in FAST.items()}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    (home / "cosmoskit.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    from cosmoskit._core import context

    context.reset()


def fake_transfer1_host(repo: Path, checkpoints: Path) -> None:
    """What `status` and every launch check for before Transfer 1 may run on a place (the files only:
    the model itself is the emulator, run by the docker-CLI TEST DOUBLE or a torchrun double)."""
    script = repo / "cosmos_transfer1" / "diffusion" / "inference" / "transfer.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("# stand-in: the real script is not needed here\n")
    (checkpoints / "nvidia").mkdir(parents=True, exist_ok=True)


def install_docker_double(bin_dir: Path, state_dir: Path) -> Path:
    """Put the docker-CLI TEST DOUBLE (tests/doubles/docker_double.py) on a PATH folder as ``docker``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "docker"
    double = Path(__file__).parent / "doubles" / "docker_double.py"
    shim.write_text(f"#!/bin/sh\nDOCKER_DOUBLE_DIR={state_dir} exec {sys.executable} {double} \"$@\"\n")
    shim.chmod(0o755)
    return shim


def docker_calls(state_dir: Path) -> list[list[str]]:
    import json

    path = state_dir / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def sshd(tmp_path: Path):
    """A real OpenSSH server on 127.0.0.1 for this test; the remote PATH starts with ``sshd.bin`` (for test doubles)."""
    from services import sshd as sshd_mod

    if not sshd_mod.available():
        require("OpenSSH sshd")
    bin_dir = tmp_path / "remote-bin"
    bin_dir.mkdir()
    server = sshd_mod.make(tmp_path / "sshd", path_prefix=str(bin_dir))
    server.bin = bin_dir  # type: ignore[attr-defined]
    server.start()
    yield server
    server.stop()


def ssh_executor(server: Any, tmp_path: Path, *, trusted: bool = True, **extra: Any) -> dict[str, Any]:
    """An ``executors:`` entry for the loopback sshd; its known_hosts holds the host key when ``trusted``."""
    known = tmp_path / "known_hosts"
    if trusted:
        known.write_text(server.known_hosts_line())
    entry = {"type": "ssh", "host": "127.0.0.1", "port": server.port, "user": server.user,
             "key_file": str(server.user_key), "known_hosts": str(known),
             "remote_dir": str(tmp_path / "remote"), "python": sys.executable}
    entry.update(extra)
    return entry


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A real single-node Slurm (slurmctld, slurmd, munge) for the whole session; 2 count-only GPUs."""
    from services import slurm as slurm_mod

    if not slurm_mod.available():
        require("Slurm (slurm-wlm, munge) as root")
    cluster = slurm_mod.start(tmp_path_factory.mktemp("slurm"))
    yield cluster
    cluster.stop()


def slurm_executor(cluster: Any, shared: Path, **extra: Any) -> dict[str, Any]:
    entry = {"type": "slurm", "remote_dir": str(shared), "python": sys.executable, "gpus_per_job": 1,
             "partition": "debug", "time_limit": "00:10:00", "slurm_env": dict(cluster.env), "concurrency": 4}
    entry.update(extra)
    return entry


# -- helpers shared by the end-to-end tests ------------------------------------------------------

def make_prompt(cli: Any, text: str, folder: Path) -> str:
    """``cosmoskit prompt create`` through the CLI; returns the new prompt's id."""
    result = cli("prompt", "create", text, str(folder), "--json")
    assert result.exit_code == 0, result
    return result.json()["id"]


def ledger_runs() -> dict[str, dict[str, Any]]:
    from cosmoskit._core import context

    with context.ledger().read() as tx:
        return {r["id"]: dict(r) for r in tx.runs()}


def ledger_batches() -> list[dict[str, Any]]:
    """Every batch, oldest first."""
    from cosmoskit._core import context

    with context.ledger().read() as tx:
        return sorted((dict(b) for b in tx.batches()), key=lambda b: b["created"])


@contextlib.contextmanager
def in_process_plugins(**named: Any) -> Any:
    """Register plugin objects by name beside the installed ones (caches reset), for the block only."""
    from cosmoskit._core import plugins

    plugins.load_plugins()
    for name, plugin in named.items():
        plugins.pm.register(plugin, name=name)
    try:
        plugins.reset()
        yield
    finally:
        for name in named:
            plugins.pm.unregister(name=name)
        plugins.reset()


def running_batch() -> dict[str, Any] | None:
    return next((b for b in ledger_batches() if b["state"] == "running"), None)


def wait_for(predicate: Any, timeout: float = 180.0) -> Any:
    """The predicate's first truthy value; a generous deadline, since a loaded machine is slow, not wrong."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def cosmoskit_exe() -> str:
    return str(Path(sys.executable).with_name("cosmoskit"))


def spawn(project: Path, *args: str) -> subprocess.Popen[str]:
    """The real ``cosmoskit`` in the background, in the project folder."""
    return subprocess.Popen([cosmoskit_exe(), *args], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``-n 2 --dist loadgroup``, the README's command) every test that may start the
    session's single-node Slurm runs in one worker: one cluster per run, as a second slurmd for the same
    node name on this host would be a different cluster from the one the tests describe."""
    for item in items:
        if "slurm_cluster" in getattr(item, "fixturenames", ()) or "slurm" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("slurm"))
