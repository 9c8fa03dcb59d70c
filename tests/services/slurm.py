"""A single-node Slurm (slurmctld + slurmd + munge) for tests and benchmarks (docs/slurm.md has how the tests start it).

It runs as root with its own configuration, state and logs in a folder; client commands find it
through ``SLURM_CONF``.  The node offers a count-only GRES ``gpu:2`` (no device files: there are
no GPUs here), so ``--gres=gpu:N`` is scheduled for real.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def available() -> bool:
    return all(shutil.which(t) for t in ("slurmctld", "slurmd", "sbatch", "munged")) and os.geteuid() == 0


@dataclass
class Slurm:
    folder: Path
    conf: Path
    port: int

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, env={**os.environ, **self.env}, check=check)

    def stop(self) -> None:
        for name in ("slurmd", "slurmctld"):
            pid_file = self.folder / "state" / f"{name}.pid"
            if pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text().strip()), 15)
                except (OSError, ValueError):
                    pass
        time.sleep(0.5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_munge() -> None:
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode == 0:
        return
    for d in ("/etc/munge", "/run/munge", "/var/log/munge", "/var/lib/munge"):
        Path(d).mkdir(parents=True, exist_ok=True)
    key = Path("/etc/munge/munge.key")
    if not key.exists():
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
    subprocess.run(["munged", "--force"], capture_output=True, check=True)


def start(folder: Path) -> Slurm:
    ensure_munge()
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool", "log"):
        (folder / sub).mkdir(exist_ok=True)
    host = socket.gethostname()
    cpus = os.cpu_count() or 2
    ctl_port, d_port = _free_port(), _free_port()
    conf = folder / "slurm.conf"
    conf.write_text(f"""\
ClusterName=cosmoskit-test
SlurmctldHost={host}
SlurmctldPort={ctl_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/state/slurmctld.pid
SlurmdPidFile={folder}/state/slurmd.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
GresTypes=gpu
KillWait=5
MinJobAge=300
SchedulerParameters=sched_interval=1
NodeName={host} CPUs={cpus} RealMemory=2000 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
""")
    (folder / "gres.conf").write_text(f"AutoDetect=off\nNodeName={host} Name=gpu File=/dev/null\n"
                                      f"NodeName={host} Name=gpu File=/dev/zero\n")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    subprocess.run(["slurmctld", "-f", str(conf)], env=env, check=True, capture_output=True)
    subprocess.run(["slurmd", "-f", str(conf)], env=env, check=True, capture_output=True)
    slurm = Slurm(folder, conf, ctl_port)
    deadline = time.time() + 30
    while time.time() < deadline:
        out = slurm.run("sinfo", "-h", "-o", "%t", check=False).stdout.strip()
        if out in ("idle", "mix", "alloc"):
            return slurm
        time.sleep(0.3)
    raise RuntimeError(f"slurm did not come up: {out!r}; {(folder / 'log' / 'slurmctld.log').read_text()[-800:]}")
