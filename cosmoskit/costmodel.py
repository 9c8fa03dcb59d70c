"""The GPU cost model batching minimises (docs/cost-model.md).

A batch pays one model load that grows with its number of control networks,
then, per run, generation that grows with 121-frame chunks, steps and control
networks.  A batch may hold only control networks that fit the GPU's memory
and at most ``max_runs`` runs.  Every parameter is in ``batching.cost`` of
cosmoskit.yaml.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from cosmoskit.strategy import Item


@dataclass(frozen=True)
class CostModel:
    load_base_seconds: float = 180.0
    load_per_control_seconds: float = 60.0
    chunk_seconds_per_step: float = 7.5
    chunk_control_factor: float = 0.35
    memory_base_gb: float = 34.0
    memory_per_control_gb: float = 14.0
    gpu_memory_gb: float = 80.0
    max_runs: int = 16

    @classmethod
    def from_settings(cls, settings: Any) -> "CostModel":
        cost = settings.get("batching.cost") or {}
        return cls(**cost, gpu_memory_gb=settings.get("batching.gpu_memory_gb"),
                   max_runs=settings.get("batching.max_runs_per_batch"))

    def networks(self, controls: Iterable[str]) -> int:
        return max(1, len(frozenset(controls)))

    def memory_gb(self, controls: Iterable[str]) -> float:
        return self.memory_base_gb + self.memory_per_control_gb * self.networks(controls)

    def fits(self, controls: Iterable[str]) -> bool:
        return self.memory_gb(controls) <= self.gpu_memory_gb

    def load_seconds(self, controls: Iterable[str]) -> float:
        return self.load_base_seconds + self.load_per_control_seconds * self.networks(controls)

    def run_seconds(self, item: Item, controls: Iterable[str]) -> float:
        extra = self.chunk_control_factor * (self.networks(controls) - 1)
        return item.chunks * item.steps * self.chunk_seconds_per_step * (1 + extra)

    def batch_seconds(self, items: list[Item], controls: Iterable[str] | None = None) -> float:
        controls = frozenset(controls) if controls is not None else frozenset().union(*(i.controls for i in items))
        return self.load_seconds(controls) + sum(self.run_seconds(i, controls) for i in items)

    def single_seconds(self, items: list[Item]) -> float:
        """GPU time of running every item alone (one load each): the baseline for speed-ups."""
        return sum(self.batch_seconds([i], i.controls) for i in items)
