"""Batching strategies: valid plans for random queues, `optimal` equal to brute force, and the CLI plan."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cosmoskit._core import plugins
from cosmoskit._core.costmodel import CostModel
from cosmoskit._core.planning import valid
from cosmoskit._core.strategy import Batch, Item

from conftest import make_prompt

CONTROLS = ("vis", "edge", "depth", "seg", "keypoint")
NAMES = ("single", "strict", "mixed", "optimal")


def strategy(name: str):
    return plugins.get_strategy(name)()


def total(batches: list[Batch], model: CostModel) -> float:
    return sum(model.batch_seconds(b.items, b.controls) for b in batches)


# ---------------------------------------------------------------------- random queues and models
@st.composite
def models(draw) -> CostModel:
    per_control = draw(st.sampled_from([0.0, 8.0, 14.0, 20.0]))
    return CostModel(
        load_base_seconds=draw(st.sampled_from([0.0, 30.0, 180.0, 900.0])),
        load_per_control_seconds=draw(st.sampled_from([0.0, 10.0, 60.0, 300.0])),
        chunk_seconds_per_step=draw(st.sampled_from([0.05, 1.0, 12.7])),
        chunk_control_factor=draw(st.sampled_from([0.0, 0.1, 0.35, 1.0])),
        memory_base_gb=draw(st.sampled_from([14.0, 34.0])),
        memory_per_control_gb=per_control,
        gpu_memory_gb=draw(st.sampled_from([48.0, 80.0])),
        max_runs=draw(st.sampled_from([1, 2, 3, 4, 16])),
        # Transfer 2.5: more than one control loads the four-branch model
        multi_control_networks=draw(st.sampled_from([0, 0, 4])),
    )


@st.composite
def queues(draw, max_size: int) -> list[Item]:
    n = draw(st.integers(min_value=0, max_value=max_size))
    universe = CONTROLS[:draw(st.integers(min_value=1, max_value=5))]
    items = []
    for k in range(n):
        controls = frozenset(draw(st.sets(st.sampled_from(universe), min_size=0, max_size=len(universe))))
        items.append(Item(
            run_id=f"r{k:03d}",
            group=("transfer", draw(st.sampled_from([35, 35, 10]))),
            controls=controls,
            chunks=draw(st.sampled_from([1, 1, 2, 3])),
            steps=draw(st.sampled_from([1, 10, 35])),
            priority=draw(st.sampled_from([0, 0, 1, 5])),
            created=f"2025-01-01T00:00:{draw(st.integers(min_value=0, max_value=59)):02d}",
            batchable=draw(st.sampled_from([True] * 9 + [False])),
            max_controls=draw(st.sampled_from([None] * 6 + [0, 1, 2, 3])),
            # what a run needs whatever its batch (Cosmos 3: its own hints, a third forward)
            work=draw(st.sampled_from([1.0, 1.0, 1.5, 2.25])),
        ))
    return items


def check_plan(name: str, items: list[Item], batches: list[Batch], model: CostModel) -> None:
    placed = [i.run_id for b in batches for i in b.items]
    assert sorted(placed) == sorted(i.run_id for i in items), f"{name} must place every run exactly once"
    for b in batches:
        assert valid(b, model) is None, (name, valid(b, model), b)
    # order: highest priority held, then the oldest run; line order inside a batch
    keys = [(-max(i.priority for i in b.items), min(i.created for i in b.items)) for b in batches]
    assert keys == sorted(keys), f"{name}: batches out of priority/age order"
    for b in batches:
        inner = [(-i.priority, i.created, i.run_id) for i in b.items]
        assert inner == sorted(inner)


FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(items=queues(max_size=24), model=models())
def test_every_strategy_plans_every_run_once_and_validly(items, model):
    for name in NAMES:
        check_plan(name, items, strategy(name).plan(list(items), model), model)


@FAST
@given(items=queues(max_size=24), model=models())
def test_optimal_is_never_worse_than_the_others(items, model):
    best = total(strategy("optimal").plan(list(items), model), model)
    for name in ("single", "strict", "mixed"):
        assert best <= total(strategy(name).plan(list(items), model), model) + 1e-6 * max(1.0, best), name


# ---------------------------------------------------------------------- brute force
def partitions(seq: list):
    if not seq:
        yield []
        return
    first, rest = seq[0], seq[1:]
    for p in partitions(rest):
        yield [[first], *p]
        for k in range(len(p)):
            yield [*p[:k], [first] + p[k], *p[k + 1:]]


def brute_force(items: list[Item], model: CostModel) -> float:
    """The least GPU time over every valid partition (each batch carries its runs' union)."""
    best = float("inf")
    for p in partitions(items):
        cost = 0.0
        for runs in p:
            controls = frozenset().union(*(i.controls for i in runs))
            if valid(Batch(list(runs), controls), model):
                break
            cost += model.batch_seconds(runs, controls)
        else:
            best = min(best, cost)
    return best


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=queues(max_size=8), model=models())
def test_optimal_equals_brute_force_on_small_queues(items, model):
    got = total(strategy("optimal").plan(list(items), model), model)
    want = brute_force(items, model) if items else 0.0
    assert got == pytest.approx(want, rel=1e-9, abs=1e-6)


def item(run_id: str, controls: str, *, chunks: int = 1, steps: int = 35, priority: int = 0, cap=None) -> Item:
    return Item(run_id, ("transfer",), frozenset(controls.split(",")) if controls else frozenset(), chunks, steps,
                priority, f"t-{run_id}", True, cap)


def test_optimal_splits_one_control_set_across_two_batches():
    """Two vis runs fill the spare slot of two different batches: no whole-set rule finds this."""
    model = CostModel(load_base_seconds=300, load_per_control_seconds=0, chunk_seconds_per_step=1,
                      chunk_control_factor=0.1, memory_base_gb=0, memory_per_control_gb=40, gpu_memory_gb=80,
                      max_runs=2)
    items = [item("a1", "vis"), item("a2", "vis"), item("ab", "vis,edge"), item("ac", "vis,depth")]
    batches = strategy("optimal").plan(items, model)
    assert sorted(sorted(b.run_ids) for b in batches) == [["a1", "ab"], ["a2", "ac"]] or \
        sorted(sorted(b.run_ids) for b in batches) == [["a1", "ac"], ["a2", "ab"]]
    assert total(batches, model) == pytest.approx(brute_force(items, model))
    assert total(batches, model) < total(strategy("strict").plan(items, model), model)


def test_optimal_respects_memory_and_caps():
    model = CostModel()  # 80 GB: four control networks fit, five do not
    assert model.fits(CONTROLS[:4]) and not model.fits(CONTROLS)
    items = [item("all5", ",".join(CONTROLS)), item("all5b", ",".join(CONTROLS)),
             item("capped", "vis", cap=1), item("v", "vis"), item("ve", "vis,edge", cap=2)]
    for name in NAMES:
        batches = strategy(name).plan(items, model)
        check_plan(name, items, batches, model)
        assert [b.run_ids for b in batches if "all5" in b.run_ids] == [["all5"]]


def test_large_groups_are_split_by_max_runs():
    model = CostModel(max_runs=4)
    items = [item(f"r{k:02d}", "edge") for k in range(10)]
    for name in ("strict", "mixed", "optimal"):
        batches = strategy(name).plan(items, model)
        assert sorted(len(b.items) for b in batches) == [2, 4, 4], name


def test_optimal_orders_by_priority_then_age():
    model = CostModel()
    items = [item("old", "edge"), item("urgent", "seg", priority=9), item("mid", "depth", priority=3)]
    items = [Item(i.run_id, i.group, i.controls, i.chunks, 35, i.priority, c, True, None)
             for i, c in zip(items, ["2025-01-01", "2025-01-03", "2025-01-02"], strict=True)]
    batches = strategy("optimal").plan(items, model)
    assert [b.run_ids[0] for b in batches][:1] == ["urgent"]
    assert [max(i.priority for i in b.items) for b in batches] == sorted(
        (max(i.priority for i in b.items) for b in batches), reverse=True)


def test_default_cost_model_numbers():
    """The defaults documented in docs/cost-model.md."""
    model = CostModel()
    one = item("x", "edge")
    assert model.memory_gb({"edge"}) == 28.0  # the "requires at least 28GB" of T1 #192/#201
    assert model.max_networks() == 4
    assert model.run_seconds(one, {"edge"}) == pytest.approx(35 * 12.7)
    assert model.run_seconds(one, {"edge", "vis"}) == pytest.approx(35 * 12.7 * 1.35)
    assert model.load_seconds({"edge"}) == 240.0 and model.load_seconds(CONTROLS[:4]) == 420.0
    assert model.batch_seconds([one, one], {"edge"}) == pytest.approx(240 + 2 * 35 * 12.7)
    assert model.single_seconds([one, one]) == pytest.approx(2 * (240 + 35 * 12.7))


def test_multi_control_networks_price_any_mix_as_four_branches():
    """Transfer 2.5: one control loads its checkpoint; two or more load the four-branch model, whatever they are."""
    model = CostModel(load_base_seconds=100, load_per_control_seconds=15, chunk_seconds_per_step=1,
                      chunk_control_factor=0.2, memory_base_gb=65.4, memory_per_control_gb=0,
                      multi_control_networks=4)
    assert [model.networks(c) for c in ([], ["edge"], ["edge", "vis"], ["edge", "vis", "depth", "seg"])] == [1, 1, 4, 4]
    assert model.load_seconds({"edge"}) == 115 and model.load_seconds({"edge", "seg"}) == 160
    one = item("x", "edge")
    assert model.run_seconds(one, {"edge", "seg"}) == pytest.approx(35 * 1.6)
    heavy = Item("h", ("transfer",), frozenset({"edge"}), 2, 10, 0, "t", work=1.5)
    assert model.run_seconds(heavy, {"edge"}) == pytest.approx(2 * 10 * 1.5)
    # two single-control runs: two small loads beat one four-branch load here
    items = [item("e", "edge"), item("d", "depth")]
    batches = strategy("optimal").plan(items, model)
    assert total(batches, model) == pytest.approx(brute_force(items, model))


def test_optimal_plans_thousands_of_runs():
    """The realistic shape of bench/planning.py (10,000 runs there, timed there), 3,000 here: valid and no worse
    than strict at scale."""
    import random

    rng = random.Random(7)
    sets = [frozenset(c) for k in range(1, 5) for c in itertools.combinations(CONTROLS[:4], k)]
    items = [Item(f"r{k:05d}", ("transfer", s), rng.choice(sets), rng.choice([1, 1, 2]), s, rng.choice([0, 1]),
                  f"t{k:05d}") for k in range(3000) for s in [rng.choice([20, 35, 50])]]
    model = CostModel()
    batches = strategy("optimal").plan(items, model)
    check_plan("optimal", items, batches, model)
    assert total(batches, model) <= total(strategy("strict").plan(items, model), model) + 1e-6


# ---------------------------------------------------------------------- through the CLI
WEIGHTS = ["vis=1", "edge=1", "depth=1", "vis=0.5,edge=0.5", "vis=0.5,depth=0.5", "edge=0.5,depth=0.5",
           "vis=0.3,edge=0.3,depth=0.4", "vis=1", "edge=1", "vis=0.5,edge=0.5", "depth=1", "edge=0.5,depth=0.5"]


@pytest.fixture
def queued(project, cli, videos):
    pid = make_prompt(cli, "a street at dusk", videos["scene"])
    ids = []
    for weights in WEIGHTS:
        result = cli("transfer", pid, "--weights", weights, "--queue", "--json")
        assert result.exit_code == 0, result
        ids.append(result.json()[0]["id"])
    return ids


def plan_json(cli, name: str) -> dict:
    result = cli("queue", "plan", "--strategy", name, "--json")
    assert result.exit_code == 0, result
    return result.json()


def test_queue_plan_json_for_every_strategy(cli, queued):
    plans = {name: plan_json(cli, name) for name in NAMES}
    for name, p in plans.items():
        assert p["strategy"] == name and p["runs"] == len(queued)
        assert sorted(r for b in p["batches"] for r in b["runs"]) == sorted(queued)
        assert p["gpu_seconds"] == pytest.approx(sum(b["gpu_seconds"] for b in p["batches"]), abs=1.0)
    single, optimal = plans["single"], plans["optimal"]
    assert single["batches"] and len(single["batches"]) == len(queued) and single["speedup"] == pytest.approx(1.0)
    assert len(optimal["batches"]) < len(single["batches"])
    assert optimal["gpu_seconds"] < single["gpu_seconds"] and optimal["speedup"] > 1.0
    for name in ("strict", "mixed"):
        assert optimal["gpu_seconds"] <= plans[name]["gpu_seconds"] + 1e-6
    # the default strategy is optimal
    result = cli("queue", "plan", "--json")
    assert result.exit_code == 0 and result.json()["strategy"] == "optimal"


def test_queue_plan_table_shows_the_speed_up(cli, queued):
    result = cli("queue", "plan", "--strategy", "optimal")
    assert result.exit_code == 0, result
    assert "speed-up" in result.stdout and f"{len(queued)} runs in" in result.stdout
