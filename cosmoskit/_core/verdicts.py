"""How a finished batch settles its runs: a pure function from what was observed to one verdict per run.

``Engine.finish`` gathers the observations (the operation's outcomes, how the batch
ended, what was asked of it) and applies the verdicts inside one ledger
transaction; every rule lives here, and ``tests/test_verdicts.py`` holds them as a
table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from cosmoskit._core.executor import PollResult
    from cosmoskit._core.operation import Outcome

Ending = Literal["exited", "vanished"]
Stop = Literal["", "cancelled", "timeout"]
VerdictKind = Literal["completed", "cancelled", "lost_turn", "timed_out", "retry", "failed"]

VANISHED_ERROR = "the batch's process vanished on the host (rebooted or killed)"


@dataclass(frozen=True)
class BatchEnd:
    """How the batch ended and what was asked of it."""

    ending: Ending  # the launcher wrote its exit code, or vanished without one
    stop: Stop = ""  # what stopped it: a cancel or the batch timeout ("" if nothing did)
    cancel_runs: frozenset[str] = frozenset()  # runs a user cancelled ("" stop + empty set: none)
    controls: int = 1  # control networks the batch's model load carried
    max_attempts: int = 2  # attempts a run may have before a failure is final
    timeout_seconds: float = 0.0


@dataclass(frozen=True)
class Verdict:
    """What becomes of one run: its kind and the changes to its record (beyond outputs and timestamps)."""

    kind: VerdictKind
    changes: dict[str, Any]


def stop_reason(requested: str | None, written: str, ending: Ending) -> Stop:
    """Why the batch stopped: what this side asked for wins; a vanished batch was stopped by nobody here,
    whatever its launcher wrote on the way down (a failed Slurm node signals it like a cancel does)."""
    reason = requested or ("" if ending == "vanished" else written.strip())
    return reason if reason in ("cancelled", "timeout") else ""  # type: ignore[return-value]


def outcomes_of_vanished(run_ids: list[str], found: list[Outcome] | None) -> list[Outcome]:
    """A vanished batch's runs: each retried, unless it wrote its output before the batch vanished."""
    from cosmoskit._core.operation import Outcome

    default = [Outcome(rid, False, error=VANISHED_ERROR, reason="vanished", retry=True) for rid in run_ids]
    if not found:
        return default
    return [f if f.ok else d for f, d in zip(found, default, strict=False)]


def verdict(outcome: Outcome, attempts: int, end: BatchEnd) -> Verdict:
    """The verdict for one run of a finished batch.

    A run that produced its output is completed, whatever happened to the batch after.  Otherwise: a run a
    user cancelled (or every run, when the whole batch was cancelled) is cancelled; a run that only lost its
    turn because another run of its batch was cancelled goes back to the queue without losing an attempt; a
    batch timeout fails the run; a run that never got its turn (the process died or vanished first, ran out
    of memory) is queued again while it has attempts left, after an out-of-memory with fewer control
    networks than the load that failed; anything else is a final failure with the model's reason."""
    if outcome.ok:
        return Verdict("completed", {"status": "completed", "error": None, "reason": None})
    cancel_all = end.stop == "cancelled" and not end.cancel_runs
    if outcome.run_id in end.cancel_runs or cancel_all:
        return Verdict("cancelled", {"status": "cancelled", "error": "cancelled on request", "reason": "cancelled"})
    if end.stop == "cancelled":
        return Verdict(
            "lost_turn",
            {
                "status": "queued",
                "batch_id": None,
                "error": None,
                "reason": None,
                "retry": True,
                "attempts": max(0, attempts - 1),
            },
        )
    if end.stop == "timeout":
        return Verdict(
            "timed_out",
            {
                "status": "failed",
                "reason": "timeout",
                "error": f"timed out after {end.timeout_seconds:.0f} s (timeouts.batch_seconds)",
            },
        )
    if outcome.retry and attempts < end.max_attempts:
        changes: dict[str, Any] = {
            "status": "queued",
            "batch_id": None,
            "error": outcome.error,
            "reason": outcome.reason,
            "retry": True,
        }
        if outcome.reason == "oom":
            changes["max_controls"] = max(1, end.controls - 1)
        return Verdict("retry", changes)
    return Verdict("failed", {"status": "failed", "error": outcome.error, "reason": outcome.reason})


def batch_state(stop: Stop, completed: int, runs: int) -> str:
    """The batch record's final state."""
    return "cancelled" if stop == "cancelled" else "done" if completed == runs else "failed"


def ending_of(result: PollResult) -> Ending:
    return "vanished" if result.state == "vanished" else "exited"
