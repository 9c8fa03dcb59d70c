"""The GPU cost model batching minimises (docs/cost-model.md).

A batch pays one model load that grows with its number of control networks,
then, per run, generation that grows with chunks, steps and control networks.
A batch may hold only control networks that fit the GPU's memory and at most
``max_runs`` runs.  With ``n = networks(controls)``::

    load(n)       = load_base_seconds + load_per_control_seconds * n
    run(item, n)  = chunks * steps * work * chunk_seconds_per_step * (1 + chunk_control_factor * (n - 1))
    memory(n)     = memory_base_gb + memory_per_control_gb * n        (must be <= gpu_memory_gb)
    batch         = load(n) + sum of run(item, n) over its runs

These are Transfer 1's parameters, in ``batching.cost`` of cosmoskit.yaml (``gpu_memory_gb``
and ``max_runs_per_batch`` in ``batching``).  Every other model brings its own through its
operation's ``cost_model`` (its chunk, its published timings), and a run's ``work`` is what it
needs whatever batch it is in (Cosmos 3: its own hints and a third forward per step).  A model
whose process switches to one fixed multi-control network set as soon as it holds more than
one control (Transfer 2.5: four branches) sets ``multi_control_networks``.  Where each default comes from is in
docs/cost-model.md: T1 publishes no VRAM or runtime table (docs/models/transfer1.md §9), so
the defaults are derived from T25's H100 numbers, T1 issue threads and T1's
code, and marked as such.  With non-negative parameters every cost and the
memory never decrease as controls are added, which the `optimal` strategy's
proof of exactness relies on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cosmoskit._core.strategy import Item


@dataclass(frozen=True)
class CostModel:
    # Model load: T5-11B text encoder, guardrail models and the 7B base (assumption:
    # ~50 GB of checkpoints read at ~0.3 GB/s); calibrate from your own logs.
    load_base_seconds: float = 180.0
    # Each extra control network is a separate 7B model (docs/models/transfer1.md §2.3): 14 GB more
    # to read at the same rate (assumption).
    load_per_control_seconds: float = 60.0
    # One 121-frame chunk, one step, one control.  Derived from T25 (docs/models/transfer2.5.md §9,
    # a stand-in since T1 has no table): H100 NVL, seg, 93-frame generation 445.52 s,
    # taken at 35 steps -> 12.7 s per step.  T1-7B is larger: likely an underestimate.
    chunk_seconds_per_step: float = 12.7
    # Each added control network runs its control encoder every step: T1's encoder
    # keeps the first 15 of the 28 DiT blocks (T1 code, config/transfer/net_ctrl.py,
    # layer_mask), ~0.54 of a base pass; relative to base + one encoder (1.54)
    # that is 0.54 / 1.54 = 0.35 per added network.
    chunk_control_factor: float = 0.35
    # The 7B DiT in bf16 (7e9 x 2 bytes), with the text encoder and guardrails offloaded.
    memory_base_gb: float = 14.0
    # One 7B control network in bf16 (docs/models/transfer1.md §2.3); base + one control = 28 GB, the
    # "requires at least 28GB" of T1 #192/#201 (docs/models/transfer1.md §2.3).
    memory_per_control_gb: float = 14.0
    # An H100-80GB class GPU (T1 "tested on H100", #4; H100/A100-80GB recommended).
    gpu_memory_gb: float = 80.0
    # Operational: bounds the work one failed batch loses (a guardrail block can
    # abort the rest of a batch, docs/models/transfer1.md §8) and keeps a batch inside
    # timeouts.batch_seconds.
    max_runs: int = 16
    # More than one control in a load loads this many networks whatever the controls (Transfer 2.5's
    # four-branch multi-control model); 0: one network per control.  Still a function of the set's
    # size that never decreases, which `optimal` needs.
    multi_control_networks: int = 0

    @classmethod
    def from_settings(cls, settings: Any) -> CostModel:
        cost = settings.get("batching.cost") or {}
        return cls(
            **cost,
            gpu_memory_gb=settings.get("batching.gpu_memory_gb"),
            max_runs=settings.get("batching.max_runs_per_batch"),
        )

    def networks(self, controls: Iterable[str]) -> int:
        """Control networks a load carries (at least one: the base model's own)."""
        n = len(frozenset(controls))
        if n > 1 and self.multi_control_networks:
            return max(n, self.multi_control_networks)
        return max(1, n)

    def memory_gb(self, controls: Iterable[str]) -> float:
        return self.memory_base_gb + self.memory_per_control_gb * self.networks(controls)

    def fits(self, controls: Iterable[str]) -> bool:
        return self.memory_gb(controls) <= self.gpu_memory_gb + 1e-9

    def load_seconds(self, controls: Iterable[str]) -> float:
        return self.load_base_seconds + self.load_per_control_seconds * self.networks(controls)

    def run_seconds(self, item: Item, controls: Iterable[str]) -> float:
        extra = self.chunk_control_factor * (self.networks(controls) - 1)
        return item.chunks * item.steps * item.work * self.chunk_seconds_per_step * (1 + extra)

    def batch_seconds(self, items: list[Item], controls: Iterable[str] | None = None) -> float:
        controls = frozenset(controls) if controls is not None else frozenset().union(*(i.controls for i in items))
        return self.load_seconds(controls) + sum(self.run_seconds(i, controls) for i in items)

    def single_seconds(self, items: list[Item]) -> float:
        """GPU time of running every item alone (one load each): the baseline for speed-ups."""
        return sum(self.batch_seconds([i], i.controls) for i in items)

    def max_networks(self) -> int:
        """The most control networks one batch may carry on this GPU (0 if not even one fits)."""
        if self.memory_per_control_gb <= 0:
            return 10**6 if self.memory_base_gb <= self.gpu_memory_gb else 0
        return max(0, int((self.gpu_memory_gb - self.memory_base_gb) // self.memory_per_control_gb + 1e-9))


def model_of(batch: Any, default: CostModel) -> CostModel:
    """The cost model a planned batch is priced with: its runs' own (``Item.cost``), else ``default``."""
    items = getattr(batch, "items", batch)
    own = items[0].cost if items else None
    return own if isinstance(own, CostModel) else default
