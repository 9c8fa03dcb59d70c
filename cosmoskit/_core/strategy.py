"""The BatchingStrategy base class: how queued runs become batches."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from cosmoskit._core.costmodel import CostModel


@dataclass(frozen=True)
class Item:
    """One queued run as the planner sees it."""

    run_id: str
    group: tuple[Any, ...]  # runs may share a batch only within one group (operation + model-level arguments)
    controls: frozenset[str]
    chunks: int  # 121-frame chunks of its video
    steps: int
    priority: int
    created: str
    batchable: bool = True
    max_controls: int | None = None  # after an out-of-memory: only batches with at most this many control networks
    # How much generation the run needs whatever batch it is in, relative to a plain one (its own
    # controls, a third forward per step …): the operation's ``work``; its time is chunks x steps x work.
    work: float = 1.0
    # The cost model of the run's model (the operation's ``cost_model``), set by the planner; None: the
    # configured one.  A group never mixes models, so every run of a batch carries the same one.
    cost: Any = None


@dataclass
class Batch:
    """A planned batch: runs in line order and the control networks its model load carries."""

    items: list[Item]
    controls: frozenset[str]

    @property
    def run_ids(self) -> list[str]:
        return [i.run_id for i in self.items]


class BatchingStrategy(ABC):
    """Base class of batching strategies.  A minimal plugin::

        from cosmoskit import api

        class Pairs(api.BatchingStrategy):
            name = "pairs"
            description = "two runs with the same controls per batch"

            def plan(self, items, model):
                batches, groups = [], {}
                for item in items:
                    groups.setdefault((item.group, item.controls), []).append(item)
                for (_, controls), group in groups.items():
                    for i in range(0, len(group), 2 if group[0].batchable else 1):
                        batches.append(api.Batch(group[i:i + 2], controls))
                return self.order(batches)

        @api.hookimpl
        def register_strategies(register):
            register(Pairs)

    ``plan`` must put every item in exactly one batch, never mix groups, and
    respect ``model.fits(controls)``, ``model.max_runs`` and each item's
    ``max_controls`` (see ``cosmoskit.api.valid_batch``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # True only for a strategy whose plan has the least total GPU time of every valid plan under the cost
    # model (``optimal``): the lower bound of a many-slot plan then counts on that total.
    exact: ClassVar[bool] = False

    @abstractmethod
    def plan(self, items: list[Item], model: CostModel) -> list[Batch]:
        """Every item in exactly one batch, in launch order."""

    @staticmethod
    def order(batches: list[Batch]) -> list[Batch]:
        """Highest priority first, then the oldest run, then line order inside each batch."""
        for b in batches:
            b.items.sort(key=lambda i: (-i.priority, i.created, i.run_id))
        return sorted(batches, key=lambda b: (-max(i.priority for i in b.items), min(i.created for i in b.items)))
