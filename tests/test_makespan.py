"""Plans for many slots (cosmoskit/_core/makespan.py): properties on random queues, and tables."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosmoskit._core.costmodel import CostModel
from cosmoskit._core.makespan import (
    Pricing,
    free_times,
    list_schedule,
    lower_bound,
    makespan_of,
    round_robin,
    schedule,
    split,
)
from cosmoskit._core.planning import fewest, valid
from cosmoskit._core.strategy import Batch, Item

MODEL = CostModel(load_base_seconds=60, load_per_control_seconds=20, chunk_seconds_per_step=1.0,
                  chunk_control_factor=0.35, memory_base_gb=14, memory_per_control_gb=14, gpu_memory_gb=80, max_runs=6)
CONTROLS = ("vis", "edge", "depth", "seg")


def pricing(model: CostModel = MODEL) -> Pricing:
    return Pricing(
        batch=lambda b: model.batch_seconds(b.items, b.controls),
        alone=lambda i: model.batch_seconds([i], i.controls),
        run=lambda i: model.run_seconds(i, i.controls),
        min_load=lambda i: model.load_seconds(frozenset()),
        max_runs=lambda i: model.max_runs,
    )


def item(k: int, controls=("vis",), steps=10, chunks=1, group=("transfer",), priority=0) -> Item:
    return Item(f"rs_{k:04d}", group, frozenset(controls), chunks, steps, priority, f"2026-12-02T00:00:{k:02d}")


items_strategy = st.lists(
    st.tuples(
        st.sets(st.sampled_from(CONTROLS), min_size=1, max_size=3),
        st.sampled_from([10, 20, 35]),
        st.integers(1, 3),
        st.sampled_from([("transfer",), ("transfer", "seed-7"), ("upscale",)]),
        st.sampled_from([0, 0, 0, 5]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(items_strategy, st.integers(1, 8), st.lists(st.floats(0, 500), max_size=3),
       st.sampled_from(["makespan", "gpu_hours"]))
def test_schedule_properties(raw, slots, busy, objective):
    items = [item(k, tuple(c), steps, chunks, group, prio) for k, (c, steps, chunks, group, prio) in enumerate(raw)]
    batches = fewest(items, MODEL)
    price = pricing()
    sched = schedule(batches, price, slots, busy_for=busy, objective=objective)
    placed = [i.run_id for b in sched.batches for i in b.items]
    assert sorted(placed) == sorted(i.run_id for i in items), "every run placed exactly once"
    for b in sched.batches:
        assert valid(b, MODEL) is None, valid(b, MODEL)
    free = free_times(slots, busy)
    assert sched.makespan >= lower_bound(items, price, free) - 1e-6
    assert sched.makespan >= sched.lower_bound - 1e-6
    rr = makespan_of(round_robin(batches, price.batch, free), free)
    assert sched.makespan <= rr + 1e-6, "never worse than the single-slot plan dealt out round robin"
    # the worker list-schedules the batches in the listed order: it reproduces the plan
    again = list_schedule(sched.batches, price.batch, free)
    assert makespan_of(again, free) == pytest.approx(sched.makespan)
    assert all(p.start >= 0 and p.finish > p.start for p in sched.placed)
    if objective == "gpu_hours":
        assert sched.splits == 0


@settings(max_examples=60, deadline=None)
@given(items_strategy, st.integers(1, 6))
def test_the_exact_strategys_total_is_a_valid_bound(raw, slots):
    """With `optimal` (exact) the bound counts on its plan's total: still never above the makespan."""
    from cosmoskit._core import plugins

    items = [item(k, tuple(c), steps, chunks, group, prio) for k, (c, steps, chunks, group, prio) in enumerate(raw)]
    batches = plugins.get_strategy("optimal")().plan(items, MODEL)
    sched = schedule(batches, pricing(), slots, exact=True)
    loose = schedule(batches, pricing(), slots)
    assert loose.lower_bound - 1e-6 <= sched.lower_bound <= sched.makespan + 1e-6


def test_a_big_group_is_split_across_idle_slots():
    runs = [item(k, ("vis",), steps=35) for k in range(12)]
    batches = fewest(runs, MODEL)  # 6 runs per batch at most: two batches
    assert len(batches) == 2
    one = schedule(batches, pricing(), 1)
    four = schedule(batches, pricing(), 4)
    assert one.splits == 0 and one.makespan == pytest.approx(sum(pricing().batch(b) for b in batches))
    assert four.splits >= 2 and len(four.batches) >= 4
    assert four.makespan < one.makespan / 2.5
    assert four.gpu_seconds > one.gpu_seconds, "finishing sooner costs the extra loads"
    assert four.makespan <= 1.10 * four.lower_bound


def test_gpu_hours_objective_never_splits():
    runs = [item(k, ("vis",), steps=35) for k in range(12)]
    sched = schedule(fewest(runs, MODEL), pricing(), 4, objective="gpu_hours")
    assert sched.splits == 0 and len(sched.batches) == 2


def test_priority_goes_first_whatever_its_length():
    short_urgent = Batch([item(1, steps=10, priority=9)], frozenset({"vis"}))
    long_normal = Batch([item(2, steps=35, chunks=3)], frozenset({"vis"}))
    sched = schedule([long_normal, short_urgent], pricing(), 1)
    assert [b.items[0].run_id for b in sched.batches] == ["rs_0001", "rs_0002"]


def test_busy_slots_delay_the_start():
    b = Batch([item(1)], frozenset({"vis"}))
    sched = schedule([b], pricing(), 2, busy_for=[100.0, 40.0])
    (p,) = sched.placed
    assert p.start == 40.0 and sched.lower_bound >= 40.0


@pytest.mark.parametrize("weights, halves", [
    ([5, 1, 1, 1, 1, 1], ([5], [1, 1, 1, 1, 1])),
    ([3, 3, 3, 3], ([3, 3], [3, 3])),
    ([4, 3, 2, 1], ([4, 1], [3, 2])),
])
def test_split_balances_the_halves(weights, halves):
    batch = Batch([item(k, steps=w) for k, w in enumerate(weights)], frozenset({"vis"}))
    a, b = split(batch, lambda i: i.steps)
    assert ([i.steps for i in a.items], [i.steps for i in b.items]) == halves
    assert [i.run_id for i in a.items] == sorted(i.run_id for i in a.items), "line order kept"


def test_split_halves_carry_only_their_own_controls():
    batch = Batch([item(1, ("vis",), steps=30), item(2, ("edge", "depth"), steps=30)],
                  frozenset({"vis", "edge", "depth"}))
    a, b = split(batch, lambda i: i.steps)
    assert {a.controls, b.controls} == {frozenset({"vis"}), frozenset({"edge", "depth"})}


def test_lower_bound_counts_one_load_per_max_runs():
    runs = [item(k, ("vis",), steps=10) for k in range(7)]  # max_runs 6: at least two loads
    price = pricing()
    bound = lower_bound(runs, price, [0.0])
    assert bound == pytest.approx(7 * MODEL.run_seconds(runs[0], runs[0].controls) + 2 * MODEL.load_seconds(()))
    # on three slots each used slot pays a load: (7 runs + 3 loads) / 3
    three = lower_bound(runs, price, [0.0, 0.0, 0.0])
    assert three == pytest.approx((7 * MODEL.run_seconds(runs[0], runs[0].controls) + 3 * MODEL.load_seconds(())) / 3)
