"""Developer tasks (invoke): ``invoke test``, ``invoke lint``, ``invoke bench``."""
from __future__ import annotations

import sys

from invoke import task

PY = sys.executable


@task(help={"k": "only tests matching this expression", "x": "stop at the first failure"})
def test(c, k="", x=False):
    """Run the test suite (the same command CI runs, minus the install)."""
    args = [PY, "-m", "pytest", "-q"]
    if k:
        args += ["-k", repr(k)]
    if x:
        args.append("-x")
    c.run(" ".join(args), pty=False)


@task
def lint(c):
    """Byte-compile everything and run ruff if it is installed."""
    c.run(f"{PY} -m compileall -q cosmoskit plugins remote tests bench tasks.py")
    c.run(f"{PY} -m ruff --version > /dev/null 2>&1 && {PY} -m ruff check cosmoskit plugins remote tests bench || "
          f"echo 'ruff not installed; skipped (pip install ruff)'", warn=True)


BENCHES = ["startup", "ledger", "orchestration"]


@task(help={"name": "one of: " + ", ".join(BENCHES)})
def bench(c, name=""):
    """Run the benchmark scripts; they print figures (no timing is asserted anywhere)."""
    for script in [name] if name else BENCHES:
        c.run(f"{PY} bench/{script}.py")


@task(help={"folder": "where its keys, config and log go"})
def sshd(c, folder="/tmp/cosmoskit-sshd"):
    """Start a private OpenSSH server on 127.0.0.1 (as the tests do) and print an executors: entry for it."""
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "tests"))
    from services import sshd as sshd_mod

    server = sshd_mod.make(Path(folder))
    server.folder.joinpath("known_hosts").write_text(server.known_hosts_line())
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    c.run(f"{sshd_mod.SSHD} -f {server.folder / 'sshd_config'} -E {server.folder / 'sshd.log'}")  # daemonises
    print(f"""sshd on 127.0.0.1:{server.port} (stop: kill $(cat {folder}/sshd.pid))
executors:
  loopback: {{type: ssh, host: 127.0.0.1, port: {server.port}, user: {server.user}, key_file: {server.user_key},
             known_hosts: {folder}/known_hosts, remote_dir: {folder}/remote, python: {PY}}}""")


@task(help={"folder": "state, spool, logs and slurm.conf"})
def slurm(c, folder="/tmp/cosmoskit-slurm"):
    """Start a single-node Slurm (slurmctld, slurmd, munge) as the tests do, and print how to use it."""
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "tests"))
    from services import slurm as slurm_mod

    cluster = slurm_mod.start(Path(folder))
    print(f"""Slurm is up: SLURM_CONF={cluster.conf} sinfo
executors:
  cluster: {{type: slurm, remote_dir: {folder}/shared, python: {PY}, partition: debug,
            slurm_env: {{SLURM_CONF: {cluster.conf}}}}}""")
