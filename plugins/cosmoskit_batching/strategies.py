"""The bundled strategies: single, strict, mixed and optimal (docs/cost-model.md).

Every strategy puts each queued run in exactly one batch and only plans batches
``cosmoskit.api.valid_batch`` accepts: one group per batch, at most
``model.max_runs`` runs, control networks that fit the GPU's memory and respect
each run's ``max_controls`` (set after an out-of-memory).  A run that may never
share (its operation does not batch, its own controls do not fit, or its cap is
below its own control count) is always a batch of its own.
"""
from __future__ import annotations

from typing import Any

from cosmoskit.api import Batch, BatchingStrategy, Item
from cosmoskit_batching import optimal
from cosmoskit_batching.optimal import shareable


def _priority(item: Item) -> tuple:
    return (-item.priority, item.created, item.run_id)


def _split(items: list[Item], model: Any) -> tuple[list[Batch], dict[tuple, list[Item]]]:
    """Runs that can never share (one batch each), and the others by group."""
    alone: list[Batch] = []
    groups: dict[tuple, list[Item]] = {}
    for item in items:
        if shareable(item, model):
            groups.setdefault(item.group, []).append(item)
        else:
            alone.append(Batch([item], item.controls))
    return alone, groups


class Single(BatchingStrategy):
    name = "single"
    description = "one run per batch (a model load each)"

    def plan(self, items, model):
        return self.order([Batch([i], i.controls) for i in items])


class Strict(BatchingStrategy):
    name = "strict"
    description = "runs with identical control sets share a batch"

    def plan(self, items, model):
        batches, groups = _split(items, model)
        for members in groups.values():
            same: dict[frozenset, list[Item]] = {}
            for item in sorted(members, key=_priority):
                same.setdefault(item.controls, []).append(item)
            for controls, runs in same.items():
                batches += [Batch(runs[k:k + model.max_runs], controls) for k in range(0, len(runs), model.max_runs)]
        return self.order(batches)


class Mixed(BatchingStrategy):
    """A master batch per group carrying the union of its runs' controls.

    A run lacking one of the batch's controls gets weight 0 for it through
    ``control_overrides`` (the transfer operation writes them).  When the group
    has more runs than ``max_runs``, or its union does not fit the GPU's memory or
    a run's ``max_controls``, it is split first-fit: runs with the most controls
    first (similar control sets end up together, keeping each batch's union
    small), each into the first batch that still has room and whose union with
    the run's controls fits; otherwise a new batch.
    """

    name = "mixed"
    description = "one master batch per group with the union of controls (weight 0 where a run lacks one)"

    def plan(self, items, model):
        batches, groups = _split(items, model)
        for members in groups.values():
            order = sorted(members, key=lambda i: (-len(i.controls), sorted(i.controls), _priority(i)))
            built: list[list[Any]] = []  # [runs, union, smallest cap]
            open_: list[list[Any]] = []
            for item in order:
                cap = item.max_controls if item.max_controls is not None else float("inf")
                for b in open_:
                    union = b[1] | item.controls
                    least = min(b[2], cap)
                    if model.fits(union) and len(union) <= least:
                        b[0].append(item)
                        b[1], b[2] = union, least
                        if len(b[0]) >= model.max_runs:
                            open_.remove(b)
                        break
                else:
                    b = [[item], item.controls, cap]
                    built.append(b)
                    if model.max_runs > 1:
                        open_.append(b)
            batches += [Batch(runs, union) for runs, union, _ in built]
        return self.order(batches)


class Optimal(BatchingStrategy):
    """The exact minimum of the cost model's total GPU time over all valid plans.

    See ``cosmoskit_batching.optimal`` for the algorithm and the proof, and
    docs/cost-model.md.  Batches are then ordered by the highest priority they
    hold, then by their oldest run.
    """

    name = "optimal"
    exact = True  # the least total GPU time: what the lower bound of a many-slot plan may count on
    description = "the exact minimum GPU time under the cost model (default)"

    def plan(self, items, model):
        return self.order(optimal.plan(items, model))
