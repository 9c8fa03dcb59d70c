"""How a finished batch settles each run, as a table (cosmoskit._core.verdicts, applied by Engine.finish)."""
from __future__ import annotations

import pytest

from cosmoskit._core.operation import Outcome
from cosmoskit._core.verdicts import BatchEnd, batch_state, outcomes_of_vanished, stop_reason, verdict

OK = Outcome("rs_a", True, {"output.mp4": "/b/outputs/video_0/output.mp4"})
NOT_REACHED = Outcome("rs_a", False, error="the model process ended before this line", reason="not_reached", retry=True)
OOM = Outcome("rs_a", False, error="CUDA out of memory", reason="oom", retry=True)
GUARDRAIL = Outcome("rs_a", False, error="blocked by the safety guardrail", reason="guardrail", retry=False)
VANISHED = Outcome("rs_a", False, error="vanished", reason="vanished", retry=True)

EXITED = BatchEnd("exited", max_attempts=3, controls=3, timeout_seconds=600)
CANCEL_ALL = BatchEnd("exited", stop="cancelled", max_attempts=3)
CANCEL_THIS = BatchEnd("exited", stop="cancelled", cancel_runs=frozenset({"rs_a"}), max_attempts=3)
CANCEL_OTHER = BatchEnd("exited", stop="cancelled", cancel_runs=frozenset({"rs_b"}), max_attempts=3)
TIMEOUT = BatchEnd("exited", stop="timeout", max_attempts=3, timeout_seconds=600)
GONE = BatchEnd("vanished", max_attempts=3)

TABLE = [
    # outcome,    attempts, end,          kind,         status,      the changes that matter
    (OK,          1, EXITED,       "completed", "completed", {"error": None, "reason": None}),
    (OK,          3, CANCEL_ALL,   "completed", "completed", {}),  # output made before the cancel counts
    (OK,          1, TIMEOUT,      "completed", "completed", {}),
    (OK,          1, GONE,         "completed", "completed", {}),  # written before the host went away
    (NOT_REACHED, 1, EXITED,       "retry",     "queued",    {"retry": True, "reason": "not_reached",
                                                              "batch_id": None}),
    (NOT_REACHED, 3, EXITED,       "failed",    "failed",    {"reason": "not_reached"}),  # attempts spent
    (OOM,         1, EXITED,       "retry",     "queued",    {"max_controls": 2}),  # re-planned with fewer networks
    (GUARDRAIL,   1, EXITED,       "failed",    "failed",    {"reason": "guardrail"}),  # never retried
    (VANISHED,    1, GONE,         "retry",     "queued",    {"reason": "vanished"}),  # node failure, reboot
    (VANISHED,    3, GONE,         "failed",    "failed",    {"reason": "vanished"}),
    (NOT_REACHED, 1, CANCEL_ALL,   "cancelled", "cancelled", {"reason": "cancelled"}),
    (NOT_REACHED, 2, CANCEL_THIS,  "cancelled", "cancelled", {"reason": "cancelled"}),
    # the attempt is given back
    (NOT_REACHED, 2, CANCEL_OTHER, "lost_turn", "queued",    {"attempts": 1, "retry": True}),
    (GUARDRAIL,   1, CANCEL_OTHER, "lost_turn", "queued",    {"attempts": 0}),
    (NOT_REACHED, 1, TIMEOUT,      "timed_out", "failed",    {"reason": "timeout", "error":
                                                              "timed out after 600 s (timeouts.batch_seconds)"}),
]


@pytest.mark.parametrize("outcome, attempts, end, kind, status, expected", TABLE)
def test_verdict(outcome, attempts, end, kind, status, expected):
    got = verdict(outcome, attempts, end)
    assert (got.kind, got.changes["status"]) == (kind, status)
    for key, value in expected.items():
        assert got.changes[key] == value, key


@pytest.mark.parametrize("requested, written, ending, expected", [
    (None, "", "exited", ""),
    (None, "cancelled\n", "exited", "cancelled"),  # stopped outside cosmoskit (scancel, kill)
    (None, "timeout\n", "exited", "timeout"),
    ("cancelled", "timeout\n", "exited", "cancelled"),  # what this side asked for wins
    (None, "cancelled\n", "vanished", ""),  # a failed node signals the launcher like a cancel does
    ("cancelled", "", "vanished", "cancelled"),
    (None, "something odd", "exited", ""),
])
def test_stop_reason(requested, written, ending, expected):
    assert stop_reason(requested, written, ending) == expected


def test_a_vanished_batch_keeps_the_lines_it_finished():
    found = [Outcome("rs_1", True, {"output.mp4": "x"}), Outcome("rs_2", False, error="no output", reason="crash")]
    got = outcomes_of_vanished(["rs_1", "rs_2"], found)
    assert [o.ok for o in got] == [True, False]
    assert got[1].reason == "vanished" and got[1].retry
    assert [o.reason for o in outcomes_of_vanished(["rs_1"], None)] == ["vanished"]


@pytest.mark.parametrize("stop, completed, runs, state", [
    ("", 3, 3, "done"), ("", 2, 3, "failed"), ("cancelled", 3, 3, "cancelled"), ("timeout", 0, 1, "failed"),
])
def test_batch_state(stop, completed, runs, state):
    assert batch_state(stop, completed, runs) == state
