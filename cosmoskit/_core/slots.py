"""GPU slots: which GPUs a batch may take at a place, and the leases that keep two batches off one GPU.

A place has GPUs (its executor entry's ``gpus:``, or what ``nvidia-smi`` lists there); a batch
of a model that runs on ``num_gpus`` GPUs takes one *slot*: ``num_gpus`` of them, in order
(GPUs 0-1, 2-3 … for two).  A place whose executor does its own placement (Slurm), or whose
GPUs are unknown, has ``concurrency()`` anonymous slots and nothing is pinned.

The lease is the batch record itself (``devices``, ``after``), written in the same ledger
transaction that claims the runs, so two workers, or a worker and a foreground ``transfer``,
never put two batches on one GPU.  A batch holds its GPUs while it is being staged for them or
runs on them; once its model exited (``fetching``) they are free again.  A *staged* batch waits
behind the running batch named in ``after`` and starts the moment that one's model exits.  A
dead process's lease is reclaimed with its batch: a staging or staged batch whose process died
goes back to the queue; a running one keeps its GPUs until it ends, because its model still
has them.  Pure functions, tested as tables (tests/test_slots.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cosmoskit._core.errors import CosmoskitError

HOLDING = frozenset({"staging", "running"})  # states whose batch has its GPUs (or is about to)
STAGED = "staged"


@dataclass(frozen=True)
class Lease:
    """An active batch's claim on a place's GPUs, as the ledger holds it."""

    batch: str
    devices: tuple[str, ...]
    state: str
    after: str | None = None


@dataclass(frozen=True)
class Grant:
    """Where a new batch goes: these GPUs, now (``after`` None) or staged behind the batch ``after``."""

    devices: tuple[str, ...]
    after: str | None = None


@dataclass(frozen=True)
class Slots:
    """The slots of one place for batches of one size."""

    groups: tuple[tuple[str, ...], ...]
    pinned: bool  # True: the devices are real GPU indices a batch is pinned to

    def label(self, group: tuple[str, ...]) -> str:
        if not self.pinned:
            return f"slot {group[0]}"
        return f"GPU {group[0]}" if len(group) == 1 else f"GPUs {','.join(group)}"


def parse_gpus(value: Any) -> list[str] | None:
    """The GPUs an executor entry names: a number is a count (4: GPUs 0-3), a string or list names indices
    ("0,1,3", "2", [0, 1, 3]; the docker form "device=0,1" too); None for "all" (ask the place) and for
    nothing at all.

    Raises ValueError with what is wrong."""
    if value is None or value == "all" or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"must be all, a count or GPU indices, not {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"must be at least 1 GPU, not {value}")
        return [str(i) for i in range(value)]
    if isinstance(value, list):
        parts = [str(v).strip() for v in value]
    else:
        text = str(value).strip().strip('"').strip("'")
        if text.startswith("device="):
            text = text[len("device=") :]
        parts = [p.strip() for p in text.split(",")]
    if not parts or any(not p.isdigit() for p in parts):
        raise ValueError(f"must be all, a count or GPU indices like 0,1,3, not {value!r}")
    if len(set(parts)) != len(parts):
        raise ValueError(f"names a GPU twice: {value!r}")
    return parts


def gpus_problem(value: Any) -> str | None:
    """A configuration check for ``gpus:``."""
    try:
        parse_gpus(value)
    except ValueError as exc:
        return str(exc)
    return None


def slots_for(devices: Sequence[str] | None, need: int, concurrency: int = 1) -> Slots:
    """The slots a place offers to batches needing ``need`` GPUs each (leftover GPUs stay unused)."""
    if devices is None:
        return Slots(tuple((str(i),) for i in range(max(1, concurrency))), pinned=False)
    need = max(1, need)
    groups = tuple(tuple(devices[i : i + need]) for i in range(0, len(devices) - need + 1, need))
    return Slots(groups, pinned=True)


def allocate(slots: Slots, leases: Iterable[Lease], *, behind: Collection[str] = ()) -> Grant | None:
    """The first free slot; else the first slot whose GPUs are held by exactly one running batch of
    ``behind`` (those the caller follows, so it sees their exit) with nobody staged behind it: the new
    batch is staged to start when that one's model exits; else None."""
    leases = list(leases)
    held = {d for lease in leases if lease.state in HOLDING for d in lease.devices}
    staged = {d for lease in leases if lease.state == STAGED for d in lease.devices}
    for group in slots.groups:
        if not (set(group) & (held | staged)):
            return Grant(group)
    if not behind:
        return None
    for group in slots.groups:
        if set(group) & staged:
            continue
        holders = [lease for lease in leases if lease.state in HOLDING and set(lease.devices) & set(group)]
        if (
            len(holders) == 1
            and holders[0].state == "running"
            and holders[0].batch in behind
            and set(holders[0].devices) == set(group)
        ):
            return Grant(group, after=holders[0].batch)
    return None


@dataclass(frozen=True)
class SlotView:
    """One slot as ``status`` shows it: free, or the batch on it and the one staged behind."""

    label: str
    devices: tuple[str, ...]
    batch: str | None = None
    state: str | None = None
    staged: str | None = None


def slot_views(slots: Slots, leases: Iterable[Lease]) -> list[SlotView]:
    """Each slot with the batch holding it (if any) and the batch staged behind it (if any)."""
    leases = list(leases)
    out = []
    for group in slots.groups:
        on = [lease for lease in leases if set(lease.devices) & set(group)]
        holder = next((lease for lease in on if lease.state in HOLDING), None)
        waiting = next((lease for lease in on if lease.state == STAGED), None)
        out.append(
            SlotView(
                slots.label(group),
                group,
                holder.batch if holder else None,
                holder.state if holder else None,
                waiting.batch if waiting else None,
            )
        )
    return out


def docker_gpus(devices: Sequence[str]) -> str:
    """``docker run --gpus`` for these GPUs: the list form must be quoted inside the value, because Docker
    reads the value as CSV (``--gpus '"device=0,1"'`` in a shell; here one argv element)."""
    if len(devices) == 1:
        return f"device={devices[0]}"
    return f'"device={",".join(devices)}"'


def leases_of(batches: Iterable[Any], executor: str) -> list[Lease]:
    """The leases the active batch records at ``executor`` hold (records without devices hold none)."""
    return [
        Lease(b["id"], tuple(b.get("devices") or ()), b["state"], b.get("after"))
        for b in batches
        if b["executor"] == executor and b.get("devices")
    ]


class NoFreeSlot(CosmoskitError):
    """Every slot at the place is taken (and nothing may be staged behind a running batch): try later."""
