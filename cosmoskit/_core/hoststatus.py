"""What an executor reports about its place for ``cosmoskit status``: typed, so the core renders any executor.

An executor fills an :class:`ExecutorStatus`; the core adds the batches the ledger
places there and turns the two into warnings (a batch running in the ledger that
the host does not know is a zombie; something the host runs that no batch names
is an orphan).  Nothing here knows Docker or Slurm: an executor says what kind of
thing each :class:`HostJob` is and which batch-handle field would name it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The nvidia-smi query every executor asks (one format, one parser).
NVIDIA_QUERY = "name,memory.used,memory.total,utilization.gpu,temperature.gpu"


@dataclass
class GPU:
    """One GPU as nvidia-smi sees it (figures are None where it printed none)."""

    index: int
    name: str
    memory_used_mb: float | None = None
    memory_total_mb: float | None = None
    utilization_pct: float | None = None
    temperature_c: float | None = None


@dataclass
class HostJob:
    """Something cosmoskit-made that runs at a place: a container, a Slurm job, a launcher.

    ``kind`` is how a person calls it ("container", "Slurm job", "launcher").  A job is
    matched to its batch by the handle: a batch whose ``handle[handle_key]`` equals
    ``handle_value`` owns it; a job no active batch owns is reported as an orphan.
    """

    kind: str
    id: str
    name: str = ""
    state: str = ""
    reason: str = ""
    detail: str = ""
    handle_key: str = ""
    handle_value: str = ""

    def describe(self) -> str:
        """``Slurm job 42 cosmos_transfer_ab PENDING (Resources), 0:00`` for people."""
        text = f"{self.kind} {self.id}"
        if self.name and self.name != self.id:
            text += f" {self.name}"
        if self.state:
            text += f" {self.state}" + (f" ({self.reason})" if self.reason not in ("", "None") else "")
        return text + (f", {self.detail}" if self.detail else "")


@dataclass
class ExecutorStatus:
    """Reachability, GPUs, jobs and disk of one executor's place.

    ``extra`` holds facts only this kind of executor has (Slurm partitions …): they
    are shown in ``--json`` and, through ``lines``, to people, never interpreted.
    """

    host: str
    reachable: bool
    error: str | None = None
    gpus: list[GPU] = field(default_factory=list)
    gpu_note: str | None = None  # why there are no GPU figures
    jobs: list[HostJob] = field(default_factory=list)
    disk_free_bytes: int | None = None
    lines: list[str] = field(default_factory=list)  # further facts, one line each, for people
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def unreachable(cls, host: str, error: str) -> ExecutorStatus:
        return cls(host=host, reachable=False, error=error)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(out.pop("extra"))
        return out


def parse_nvidia_smi(text: str) -> list[GPU]:
    """Rows of ``nvidia-smi --query-gpu=NVIDIA_QUERY --format=csv,noheader,nounits``."""

    def num(v: str) -> float | None:
        try:
            return float(v)
        except ValueError:
            return None

    gpus: list[GPU] = []
    for line in (raw for raw in text.splitlines() if raw.strip()):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 5:
            continue
        gpus.append(GPU(len(gpus), parts[0], num(parts[1]), num(parts[2]), num(parts[3]), num(parts[4])))
    return gpus
