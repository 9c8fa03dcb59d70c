"""The bundled strategies (first versions; `optimal` is refined in its own module)."""
from __future__ import annotations

from cosmoskit.strategy import Batch, BatchingStrategy, Item


def _chunked(items: list[Item], size: int) -> list[list[Item]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class Single(BatchingStrategy):
    name = "single"
    description = "one run per batch (a model load each)"

    def plan(self, items, model):
        return self.order([Batch([i], i.controls) for i in items])


class Strict(BatchingStrategy):
    name = "strict"
    description = "runs with identical control sets share a batch"

    def plan(self, items, model):
        groups: dict[tuple, list[Item]] = {}
        for item in sorted(items, key=lambda i: (-i.priority, i.created)):
            key = (item.group, item.controls, item.batchable, item.max_controls)
            groups.setdefault(key, []).append(item)
        batches = []
        for (group, controls, batchable, cap), members in groups.items():
            size = model.max_runs if batchable else 1
            batches += [Batch(chunk, controls) for chunk in _chunked(members, size)]
        return self.order(batches)


class Mixed(Strict):
    name = "mixed"
    description = "one master batch per group with the union of controls (weight 0 where a run lacks one)"


class Optimal(Strict):
    name = "optimal"
    description = "the exact minimum GPU time under the cost model"
