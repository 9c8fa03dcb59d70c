"""GPU slots and their leases: the pure rules, as tables (cosmoskit/_core/slots.py)."""
from __future__ import annotations

import pytest

from cosmoskit._core.slots import Grant, Lease, allocate, docker_gpus, parse_gpus, slot_views, slots_for


@pytest.mark.parametrize("value, devices", [
    (None, None),
    ("all", None),
    (4, ["0", "1", "2", "3"]),
    (1, ["0"]),
    ("0,1,3", ["0", "1", "3"]),
    ("2", ["2"]),  # a string names indices
    ([0, 2], ["0", "2"]),
    ("device=0,1", ["0", "1"]),  # the docker form older configurations used
    ('"device=3"', ["3"]),
])
def test_parse_gpus(value, devices):
    assert parse_gpus(value) == devices


@pytest.mark.parametrize("value, problem", [
    (0, "at least 1"),
    ("0,x", "indices"),
    ("0,0", "twice"),
    (True, "a count"),
    ([], "indices"),
])
def test_parse_gpus_refuses(value, problem):
    with pytest.raises(ValueError, match=problem):
        parse_gpus(value)


@pytest.mark.parametrize("devices, need, concurrency, groups, pinned", [
    (["0", "1", "2", "3"], 1, 1, [("0",), ("1",), ("2",), ("3",)], True),
    (["0", "1", "2", "3"], 2, 1, [("0", "1"), ("2", "3")], True),
    (["0", "1", "2"], 2, 1, [("0", "1")], True),  # the odd GPU out stays unused
    (["0", "1"], 4, 1, [], True),  # cannot hold one batch: the engine says so
    (None, 1, 3, [("0",), ("1",), ("2",)], False),  # Slurm, or GPUs unknown: anonymous slots
    (None, 8, 1, [("0",)], False),
])
def test_slots_for(devices, need, concurrency, groups, pinned):
    slots = slots_for(devices, need, concurrency)
    assert list(slots.groups) == groups and slots.pinned is pinned


FOUR = slots_for(["0", "1", "2", "3"], 1)
PAIRS = slots_for(["0", "1", "2", "3"], 2)


def lease(batch, devices, state="running", after=None):
    return Lease(batch, tuple(devices), state, after)


@pytest.mark.parametrize("slots, leases, behind, grant", [
    # free slots are taken in order
    (FOUR, [], (), Grant(("0",))),
    (FOUR, [lease("a", "0")], (), Grant(("1",))),
    (FOUR, [lease("a", "0"), lease("b", "1", "staging")], (), Grant(("2",))),
    # a batch whose model exited (fetching) no longer holds its GPU
    (FOUR, [lease("a", "0", "fetching")], (), Grant(("0",))),
    # every GPU held: nothing, unless the caller follows a running batch to stage behind
    (FOUR, [lease(x, d) for x, d in zip("abcd", "0123", strict=True)], (), None),
    (FOUR, [lease(x, d) for x, d in zip("abcd", "0123", strict=True)], {"c"}, Grant(("2",), after="c")),
    # one staged batch per slot at most
    (FOUR, [*(lease(x, d) for x, d in zip("abcd", "0123", strict=True)), lease("e", "0", "staged", "a")], {"a"}, None),
    (FOUR, [*(lease(x, d) for x, d in zip("abcd", "0123", strict=True)), lease("e", "0", "staged", "a")], {"a", "b"},
     Grant(("1",), after="b")),
    # never behind a batch still staging (not yet started: its exit is not near)
    (FOUR, [*(lease(x, d) for x, d in zip("abc", "012", strict=True)), lease("d", "3", "staging")], {"d"}, None),
    # a staged batch keeps its slot from being taken as free, even when the one before it has exited
    (FOUR, [lease("a", "0", "fetching"), lease("e", "0", "staged", "a")], (), Grant(("1",))),
    # pairs: a slot is free only when both its GPUs are
    (PAIRS, [lease("a", "0")], (), Grant(("2", "3"))),
    (PAIRS, [lease("a", "0"), lease("b", "3")], (), None),
    # stage only behind a batch that holds exactly the slot's GPUs
    (PAIRS, [lease("a", "0"), lease("b", "2", "running"), lease("c", "3")], {"a", "b"}, None),
    (PAIRS, [lease("a", "01"), lease("b", "23")], {"b"}, Grant(("2", "3"), after="b")),
])
def test_allocate(slots, leases, behind, grant):
    assert allocate(slots, leases, behind=behind) == grant


def test_slot_views_show_holder_and_staged():
    views = slot_views(FOUR, [lease("a", "0"), lease("e", "0", "staged", "a"), lease("b", "2", "fetching")])
    assert [(v.label, v.batch, v.staged) for v in views] == [
        ("GPU 0", "a", "e"), ("GPU 1", None, None), ("GPU 2", None, None), ("GPU 3", None, None)]
    assert slot_views(slots_for(None, 1, 2), [])[1].label == "slot 1"
    assert slot_views(PAIRS, [])[1].label == "GPUs 2,3"


@pytest.mark.parametrize("devices, value", [(["3"], "device=3"), (["0", "1"], '"device=0,1"')])
def test_docker_gpus_quotes_a_list(devices, value):
    assert docker_gpus(devices) == value
