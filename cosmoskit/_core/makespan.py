"""Plans for many GPU slots: which planned batch runs on which slot, when, so the queue ends soonest.

The batching strategy makes the batches (fewest GPU hours, by its rules); this module places them on
``m`` slots, some of which may still be busy for a while, and with ``objective="makespan"`` (the
default) may split a large batch in two, each half paying its own model load, when that makes the
last run finish sooner.  docs/cost-model.md ("Many slots") has the long form.

The algorithm:

1. Order the batches by priority (highest first), then longest first (LPT); with
   ``objective="gpu_hours"`` keep the strategy's own order and never split.
2. List scheduling: each batch in that order goes to the slot that frees first.  That is exactly
   what the worker does online, so the plan and the worker agree.
3. Splitting (makespan only): try the batches of two or more runs, longest first (the
   ``SPLIT_CANDIDATES`` longest per slot); split one into 2, 3 … (up to the number of slots) pieces of
   about equal time; keep the best split that lowers (makespan, slots ending at it, GPU time); repeat
   until no split helps (at most ``MAX_SPLIT_TRIES`` tries); if the makespan did not fall in the end,
   keep no split at all.  A split never makes a batch invalid: each half
   carries only the controls of its own runs, fewer than the whole.
4. Take the better of that and the strategy's batches dealt out round robin in their own order (slot
   ``i mod m``), so the result is never worse than that.  The placed batches are listed in order of
   their planned start: list scheduling in that order reproduces the chosen schedule.

Guarantees (tests/test_makespan.py checks them on random queues with hypothesis): every run is
placed exactly once; no batch mixes runs that cannot share a load; the makespan is at least
``lower_bound`` and at most the round-robin makespan.  The lower bound is the largest of (a) the
last busy slot's end, (b) the earliest a slot frees plus the longest single run alone, and (c) the
least, over the number ``k`` of slots a plan uses, of the average end of those ``k`` slots: the
``k`` soonest free times plus the least GPU time such a plan can take (every run at its own
controls, one smallest load per ``max_runs`` runs of each group that may share a load, and at least
one load on each of the ``k`` slots; or, from an exact strategy such as ``optimal``, its plan's own
total, the least of every valid plan), divided by ``k``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from cosmoskit._core.strategy import Batch, Item

Objective = Literal["makespan", "gpu_hours"]
MAX_SPLIT_TRIES = 256  # bounds planning time on huge queues; each try is one list scheduling
SPLIT_CANDIDATES = 1  # per slot: the longest batches tried in each round of splitting (more found no better plan)
EPS = 1e-9


@dataclass(frozen=True)
class Pricing:
    """What the scheduler needs to know of the cost model: each a pure function."""

    batch: Callable[[Batch], float]  # GPU seconds of a batch (its load and its runs)
    alone: Callable[[Item], float]  # GPU seconds of a run alone at its own controls
    run: Callable[[Item], float]  # GPU seconds of a run's generation at its own controls (no load)
    min_load: Callable[[Item], float]  # the smallest model load the run's model can have
    max_runs: Callable[[Item], int]  # how many runs one batch of this run's model may hold


@dataclass(frozen=True)
class Placed:
    batch: Batch
    slot: int
    start: float  # seconds from now
    finish: float


@dataclass
class Schedule:
    """Batches placed on slots, in order of their planned start (the order a worker launches them)."""

    placed: list[Placed]
    slots: int
    makespan: float  # when the last run finishes, seconds from now
    gpu_seconds: float  # GPU time of the placed batches
    lower_bound: float  # no plan can finish sooner
    serial_seconds: float  # one slot running one run at a time: the baseline of the speed-up
    splits: int = 0  # batches added by splitting large ones to finish sooner
    objective: Objective = "makespan"
    busy_for: list[float] = field(default_factory=list)

    @property
    def speedup(self) -> float:
        return self.serial_seconds / self.makespan if self.makespan > 0 else 1.0

    @property
    def batches(self) -> list[Batch]:
        return [p.batch for p in self.placed]


def free_times(slots: int, busy_for: Sequence[float] | None = None) -> list[float]:
    """When each of ``slots`` slots frees, soonest first (busy ones after their remaining time)."""
    busy = sorted(max(0.0, b) for b in (busy_for or []))[:slots]
    return sorted(busy + [0.0] * (slots - len(busy)))


def list_schedule(batches: Sequence[Batch], seconds: Callable[[Batch], float], free: Sequence[float]) -> list[Placed]:
    """Each batch, in order, on the slot that frees first (ties: the lowest slot)."""
    heap = [(t, s) for s, t in enumerate(free)]
    heapq.heapify(heap)
    out = []
    for batch in batches:
        at, slot = heapq.heappop(heap)
        end = at + seconds(batch)
        out.append(Placed(batch, slot, at, end))
        heapq.heappush(heap, (end, slot))
    return out


def round_robin(batches: Sequence[Batch], seconds: Callable[[Batch], float], free: Sequence[float]) -> list[Placed]:
    """Batch ``i`` on slot ``i mod m``, each slot's batches back to back: the single-slot plan dealt out."""
    ends = list(free)
    out = []
    for i, batch in enumerate(batches):
        slot = i % len(ends)
        end = ends[slot] + seconds(batch)
        out.append(Placed(batch, slot, ends[slot], end))
        ends[slot] = end
    return out


def makespan_of(placed: Sequence[Placed], free: Sequence[float]) -> float:
    return max([p.finish for p in placed] + [max(free, default=0.0)] if placed else [0.0])


def split(batch: Batch, run: Callable[[Item], float], parts: int = 2) -> tuple[Batch, ...]:
    """``parts`` pieces of about equal generation time (longest runs first, each to the lightest piece),
    each keeping its runs' line order and carrying only its own runs' controls."""
    pieces: list[list[int]] = [[] for _ in range(max(1, min(parts, len(batch.items))))]
    weight = [0.0] * len(pieces)
    order = sorted(range(len(batch.items)), key=lambda k: (-run(batch.items[k]), k))
    for k in order:
        side = min(range(len(pieces)), key=lambda j: (weight[j], j))
        pieces[side].append(k)
        weight[side] += run(batch.items[k])
    out = []
    for ks in pieces:
        items = [batch.items[k] for k in sorted(ks)]
        out.append(Batch(items, frozenset().union(*(i.controls for i in items))))
    return tuple(out)


def lower_bound(items: Sequence[Item], pricing: Pricing, free: Sequence[float], least: float = 0.0) -> float:
    """No plan of these runs on these slots can finish sooner (see the module docstring); ``least`` is the
    least total GPU time of any plan when it is known (an exact strategy's)."""
    if not items:
        return max(free, default=0.0)
    longest = max(pricing.alone(i) for i in items)
    groups: dict[tuple[object, ...], list[Item]] = {}
    for i in items:
        groups.setdefault((i.group, i.batchable), []).append(i)
    runs = sum(pricing.run(i) for i in items)
    loads, needed = 0.0, 0
    for (_, batchable), members in groups.items():
        per = pricing.max_runs(members[0]) if batchable else 1
        count = math.ceil(len(members) / max(1, per))
        loads += count * min(pricing.min_load(i) for i in members)
        needed += count
    cheapest = min(pricing.min_load(i) for i in items)
    soonest = sorted(free)
    # A plan that uses k slots pays at least one load on each of them, and its last slot ends no sooner
    # than their average: the best k is the bound.
    area = min(
        (sum(soonest[:k]) + max(least, runs + loads + max(0, k - needed) * cheapest)) / k
        for k in range(1, min(len(free), len(items)) + 1)
    )
    return max(max(free), soonest[0] + longest, area)


def _level(placed: Sequence[Placed], free: Sequence[float]) -> tuple[float, int, float]:
    """How good a schedule is, for splitting: its makespan, then how many slots end at it (two slots ending
    at the makespan need two splits before it moves), then its GPU time (never pay a load for nothing);
    rounded so float noise never counts as progress."""
    ends = list(free)
    for p in placed:
        ends[p.slot] = max(ends[p.slot], p.finish)
    span = round(max(ends), 6)
    return span, sum(1 for e in ends if round(e, 6) >= span), round(sum(p.finish - p.start for p in placed), 6)


def _memo(seconds: Callable[[Batch], float]) -> Callable[[Batch], float]:
    """``seconds`` remembered per batch object (kept alive with its value, so no id is ever reused)."""
    known: dict[int, tuple[Batch, float]] = {}

    def cached(batch: Batch) -> float:
        hit = known.get(id(batch))
        if hit is None:
            hit = known[id(batch)] = (batch, seconds(batch))
        return hit[1]

    return cached


def lpt_order(batches: Sequence[Batch], seconds: Callable[[Batch], float]) -> list[Batch]:
    """Highest priority first; within a priority, longest first."""
    return sorted(batches, key=lambda b: (-max(i.priority for i in b.items), -seconds(b)))


def schedule(
    batches: Sequence[Batch],
    pricing: Pricing,
    slots: int,
    *,
    busy_for: Sequence[float] | None = None,
    objective: Objective = "makespan",
    exact: bool = False,
) -> Schedule:
    """Place the strategy's ``batches`` (in its launch order) on ``slots`` slots; see the module docstring.
    ``exact``: the batches have the least total GPU time of any valid plan (the bound counts on it)."""
    slots = max(1, slots)
    free = free_times(slots, busy_for)
    items = [i for b in batches for i in b.items]
    seconds = _memo(pricing.batch)
    baseline = round_robin(batches, seconds, free)
    splits = 0
    if objective == "gpu_hours":
        best = list_schedule(batches, seconds, free)
    else:
        current = list(batches)
        unsplit = best = list_schedule(lpt_order(current, seconds), seconds, free)
        tries = 0
        improved = slots > 1
        while improved and tries < MAX_SPLIT_TRIES:
            improved = False
            level = _level(best, free)
            # a split adds a load: the longest batches are the ones worth halving
            ranked = sorted((b for b in current if len(b.items) > 1), key=seconds, reverse=True)
            for candidate in ranked[: SPLIT_CANDIDATES * slots]:
                # into 2, 3 … pieces (up to the slots): the best that makes progress (_level) wins
                found: tuple[tuple[float, int, float], list[Batch], list[Placed], int] | None = None
                for parts in range(2, min(len(candidate.items), slots) + 1):
                    tries += 1
                    trial = [b for b in current if b is not candidate] + list(split(candidate, pricing.run, parts))
                    placed = list_schedule(lpt_order(trial, seconds), seconds, free)
                    got = _level(placed, free)
                    if got < level and (found is None or got < found[0]):
                        found = (got, trial, placed, parts - 1)
                if found is not None:
                    _, current, best, added = found
                    splits += added
                    improved = True
                    break
                if tries >= MAX_SPLIT_TRIES:
                    break
        if makespan_of(best, free) >= makespan_of(unsplit, free) - EPS:
            best, splits = unsplit, 0  # extra loads that did not bring the end nearer: not worth their GPU time
    if makespan_of(baseline, free) < makespan_of(best, free) - EPS:
        best, splits = baseline, 0
    best = sorted(best, key=lambda p: (p.start, p.slot))
    return Schedule(
        placed=best,
        slots=slots,
        makespan=makespan_of(best, free),
        gpu_seconds=sum(p.finish - p.start for p in best),
        lower_bound=lower_bound(items, pricing, free, sum(seconds(b) for b in batches) if exact else 0.0),
        serial_seconds=sum(pricing.alone(i) for i in items),
        splits=splits,
        objective=objective,
        busy_for=list(busy_for or []),
    )
