"""The drop folder's decisions as tables: every branch of decide, commit_check, recover, after_failure,
unique_name and the settle rule.  Pure functions: no disk, no ledger, no clock."""
from __future__ import annotations

from typing import Any

import pytest

from cosmoskit_dropfolder.decisions import (
    MAX_ATTEMPTS,
    Action,
    Decision,
    Failure,
    Seen,
    after_failure,
    commit_check,
    decide,
    record_key,
    recover,
    unique_name,
)
from cosmoskit_dropfolder.intake import Look, Settled, settle

PATH = "/drop/shot"
OWNER = {"pid": 4242, "host": "gpu1", "start": "1"}


def rec(state: str, *, path: str = PATH, hash: str = "h1", dest: str | None = None, **more: Any) -> dict[str, Any]:
    return {"path": path, "name": path.rsplit("/", 1)[-1], "hash": hash, "state": state,
            "dest": dest if dest is not None else "/drop/processed/shot", **more}


INGESTED_HERE = rec("ingested", dest=PATH, prompt_id="ps_here", ingested="2024-05-01T10:00:00")
INGESTED_MOVED = rec("ingested", prompt_id="ps_moved", ingested="2024-05-01T10:00:00")
OLD_IN_PLACE = rec("ingested", hash="h0", dest=PATH, prompt_id="ps_old", ingested="2024-05-01T09:00:00")
OLD_MOVED = rec("ingested", hash="h0", prompt_id="ps_old", ingested="2024-05-01T09:00:00")
OLDER_MOVED = rec("ingested", hash="h-1", prompt_id="ps_older", ingested="2024-04-01T09:00:00")
TWIN = rec("ingested", path="/drop/other", prompt_id="ps_twin", ingested="2024-05-01T08:00:00")
CLAIMED = rec("claimed", owner=OWNER)

# (id, seen, record under its key, same path, same hash, claimant alive, dest exists) -> action, record, twin
DECIDE = [
    ("problems come first", Seen(PATH, "h1", ("a link out",)), INGESTED_HERE, [], [], False, True,
     Action.REJECT, None, None),
    ("ingested right here (mark)", Seen(PATH, "h1"), INGESTED_HERE, [INGESTED_HERE], [INGESTED_HERE], False, True,
     Action.DONE, INGESTED_HERE, None),
    ("ingested, never moved", Seen(PATH, "h1"), INGESTED_MOVED, [INGESTED_MOVED], [INGESTED_MOVED], False, False,
     Action.FINISH_MOVE, INGESTED_MOVED, None),
    ("ingested and moved, dropped again", Seen(PATH, "h1"), INGESTED_MOVED, [INGESTED_MOVED], [INGESTED_MOVED],
     False, True, Action.DUPLICATE, INGESTED_MOVED, None),
    ("change reported already", Seen(PATH, "h1"), rec("changed", dest=PATH), [OLD_IN_PLACE], [], False, True,
     Action.QUIET, rec("changed", dest=PATH), None),
    ("claimed by a live watcher", Seen(PATH, "h1"), CLAIMED, [CLAIMED], [CLAIMED], True, False,
     Action.BUSY, CLAIMED, None),
    ("claimed by a dead watcher", Seen(PATH, "h1"), CLAIMED, [CLAIMED], [CLAIMED], False, False,
     Action.CLAIM, CLAIMED, None),
    ("claimed without an owner", Seen(PATH, "h1"), rec("claimed", owner=None), [], [], True, False,
     Action.CLAIM, rec("claimed", owner=None), None),
    ("rejected before, dropped again", Seen(PATH, "h1"), rec("rejected"), [rec("rejected")], [rec("rejected")],
     False, True, Action.CLAIM, rec("rejected"), None),
    ("vanished before, dropped again", Seen(PATH, "h1"), rec("vanished"), [], [], False, False,
     Action.CLAIM, rec("vanished"), None),
    ("changed in place after ingestion", Seen(PATH, "h1"), None, [OLD_IN_PLACE], [], False, False,
     Action.CHANGED_IN_PLACE, OLD_IN_PLACE, None),
    ("an ingested name, other content", Seen(PATH, "h1"), None, [OLD_MOVED], [], False, False,
     Action.CHANGED, OLD_MOVED, None),
    ("the latest earlier ingest counts, not the last listed", Seen(PATH, "h1"), None, [OLD_IN_PLACE, OLDER_MOVED],
     [], False, False, Action.CHANGED_IN_PLACE, OLD_IN_PLACE, None),
    ("an earlier rejection at this path is no ingest", Seen(PATH, "h1"), None, [rec("rejected", hash="h0")], [],
     False, False, Action.CLAIM, None, None),
    ("new content", Seen(PATH, "h1"), None, [], [], False, False, Action.CLAIM, None, None),
    ("same content under another name", Seen(PATH, "h1"), None, [], [TWIN], False, False, Action.CLAIM, None, TWIN),
    ("the last twin is named", Seen(PATH, "h1"), None, [], [TWIN, {**TWIN, "path": "/drop/third"}], False, False,
     Action.CLAIM, None, {**TWIN, "path": "/drop/third"}),
    ("a twin must be ingested", Seen(PATH, "h1"), None, [], [{**TWIN, "state": "rejected"}], False, False,
     Action.CLAIM, None, None),
]


@pytest.mark.parametrize("seen, record, same_path, same_hash, alive, dest_exists, action, about, twin",
                         [row[1:] for row in DECIDE], ids=[row[0] for row in DECIDE])
def test_decide(seen: Seen, record: Any, same_path: Any, same_hash: Any, alive: bool, dest_exists: bool,
                action: Action, about: Any, twin: Any) -> None:
    decision = decide(seen, record, same_path, same_hash, claimant_alive=alive, dest_exists=dest_exists)
    assert decision.action is action
    assert decision.record == about and decision.twin == twin
    assert decision.lines == (seen.problems if action is Action.REJECT else ())


def test_the_decide_table_reaches_every_action() -> None:
    assert {row[7] for row in DECIDE} == set(Action)


def test_a_rejection_carries_every_problem() -> None:
    assert decide(Seen(PATH, "h", ("one", "two")), None, [], [], claimant_alive=False, dest_exists=False) == \
        Decision(Action.REJECT, lines=("one", "two"))


COMMIT = [
    ("no record", None, "ps_1", False, "missing"),
    ("still our claim", rec("claimed", owner=OWNER), "ps_1", False, "commit"),
    ("a claim without an owner", rec("claimed", owner=None), "ps_1", True, "commit"),
    ("taken over by a live watcher", rec("claimed", owner=OWNER), "ps_1", True, "taken"),
    ("written by an earlier attempt", rec("ingested", prompt_id="ps_1"), "ps_1", False, "already"),
    ("ingested by someone else", rec("ingested", prompt_id="ps_2"), "ps_1", False, "not-claimed"),
    ("rejected meanwhile", rec("rejected"), "ps_1", False, "not-claimed"),
    ("vanished meanwhile", rec("vanished"), "ps_1", False, "not-claimed"),
]


@pytest.mark.parametrize("record, prompt_id, alive, expected", [r[1:] for r in COMMIT], ids=[r[0] for r in COMMIT])
def test_commit_check(record: Any, prompt_id: str, alive: bool, expected: str) -> None:
    assert commit_check(record, prompt_id, claimant_alive=alive) == expected


RECOVER = [
    ("its watcher still runs", rec("claimed", owner=OWNER), True, True, True, "busy"),
    ("still where it was dropped", rec("claimed", owner=OWNER), False, True, False, "rescan"),
    ("moved, not committed", rec("claimed", owner=OWNER), False, False, True, "resume"),
    ("gone from both places", rec("claimed", owner=OWNER), False, False, False, "vanished"),
    ("no owner recorded", rec("claimed", owner=None), True, False, True, "resume"),
]


@pytest.mark.parametrize("record, alive, at_path, at_dest, expected", [r[1:] for r in RECOVER],
                         ids=[r[0] for r in RECOVER])
def test_recover(record: Any, alive: bool, at_path: bool, at_dest: bool, expected: str) -> None:
    assert recover(record, claimant_alive=alive, at_path=at_path, at_dest=at_dest) == expected


RECORD_KEYS = [
    ("a rejected claim: its own record", rec("claimed", owner=OWNER), "rejected", "K"),
    ("rejected again", rec("rejected"), "rejected", "K"),
    ("a first rejection", None, "rejected", "K"),
    ("a duplicate: beside the ingest, never over it", INGESTED_MOVED, "rejected", "/drop/rejected/shot|h1"),
    ("refused after an ingest in place: beside it", INGESTED_HERE, "rejected", "/drop/rejected/shot|h1"),
    ("a claim that vanished", rec("claimed", owner=OWNER), "vanished", "K"),
    ("a vanished claim committed after all: left alone", INGESTED_MOVED, "vanished", None),
]


@pytest.mark.parametrize("current, state, expected", [r[1:] for r in RECORD_KEYS], ids=[r[0] for r in RECORD_KEYS])
def test_record_key(current: Any, state: Any, expected: str | None) -> None:
    assert record_key("K", current, state, "/drop/rejected/shot|h1") == expected


FAILURES = [
    ("hashing: first failure", "identity", 1, False, Failure("retry", 5.0)),
    ("hashing: backs off", "identity", 3, False, Failure("retry", 20.0)),
    ("hashing: never gives up, at most 5 min", "identity", 12, False, Failure("retry", 300.0)),
    ("hashing: the folder is gone", "identity", 1, True, Failure("vanished")),
    ("build: first failure", "build", 1, False, Failure("retry", 5.0)),
    ("build: second failure", "build", MAX_ATTEMPTS - 1, False, Failure("retry", 10.0)),
    ("build: gives up", "build", MAX_ATTEMPTS, False, Failure("give-up")),
    ("build: the folder is gone", "build", 1, True, Failure("vanished")),
    ("commit: first failure", "commit", 1, False, Failure("retry", 1.0)),
    ("commit: second failure", "commit", MAX_ATTEMPTS - 1, False, Failure("retry", 2.0)),
    ("commit: gives up (the folder is then rejected)", "commit", MAX_ATTEMPTS, False, Failure("give-up")),
    ("commit: a missing folder does not matter", "commit", 1, True, Failure("retry", 1.0)),
    ("record: first failure", "record", 1, False, Failure("retry", 1.0)),
    ("record: gives up", "record", MAX_ATTEMPTS, False, Failure("give-up")),
]


@pytest.mark.parametrize("stage, attempts, gone, expected", [r[1:] for r in FAILURES], ids=[r[0] for r in FAILURES])
def test_after_failure(stage: Any, attempts: int, gone: bool, expected: Failure) -> None:
    assert after_failure(stage, attempts, gone=gone) == expected


NAMES = [
    ("free", "shot", set(), "shot"),
    ("taken once", "shot", {"shot"}, "shot-2"),
    ("taken thrice", "shot", {"shot", "shot-2", "shot-3"}, "shot-4"),
    ("a gap is not filled before the first", "shot", {"shot", "shot-3"}, "shot-2"),
    ("others do not matter", "shot", {"shot-2", "other"}, "shot"),
]


@pytest.mark.parametrize("name, taken, expected", [r[1:] for r in NAMES], ids=[r[0] for r in NAMES])
def test_unique_name(name: str, taken: set[str], expected: str) -> None:
    assert unique_name(name, taken) == expected


def look(**kw: Any) -> Look:
    base = {"handled": False, "same_as_handled": False, "changed": False, "empty": False, "marker": False,
            "partial": False, "quiet_since": 100.0}
    return Look(**{**base, **kw})


# now = 105, settle = 10
SETTLE = [
    ("handled, unchanged (a re-touch)", look(handled=True, same_as_handled=True), Settled("unchanged", None)),
    ("handled, then changed: wait, READY ignored", look(handled=True, marker=True), Settled("reopened", 115.0)),
    ("empty: wait for an event", look(empty=True, marker=True), Settled("empty", None)),
    ("a copy in progress", look(partial=True, quiet_since=0.0), Settled("copying", 115.0)),
    ("READY beats a partial file", look(partial=True, marker=True, changed=True), Settled("complete", None)),
    ("READY beats a change", look(marker=True, changed=True), Settled("complete", None)),
    ("changed: a full settle time from now", look(changed=True, quiet_since=0.0), Settled("settling", 115.0)),
    ("quiet, not long enough", look(quiet_since=100.0), Settled("settling", 110.0)),
    ("quiet long enough", look(quiet_since=95.0), Settled("complete", None)),
    ("quiet much longer", look(quiet_since=0.0), Settled("complete", None)),
]


@pytest.mark.parametrize("seen, expected", [r[1:] for r in SETTLE], ids=[r[0] for r in SETTLE])
def test_settle(seen: Look, expected: Settled) -> None:
    assert settle(seen, 105.0, 10.0) == expected


def test_settle_with_no_settle_time_still_looks_again_a_moment_later() -> None:
    assert settle(look(changed=True), 105.0, 0.0) == Settled("settling", 105.05)
    assert settle(look(partial=True), 105.0, 0.0) == Settled("copying", 105.5)
    assert settle(look(quiet_since=105.0), 105.0, 0.0) == Settled("complete", None)
