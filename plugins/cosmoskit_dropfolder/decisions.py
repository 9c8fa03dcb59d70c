"""The drop folder's decisions, as pure functions over typed inputs (tests/test_ingest_decisions.py tables them).

The watcher gathers the facts (a fingerprint, the ledger's records, whether a claiming watcher is
alive, what is on disk) and acts on the answer; nothing here reads the disk, the ledger or the clock.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from cosmoskit_dropfolder.records import IngestRecord, IngestState

MAX_ATTEMPTS = 3   # a folder whose build or commit fails this often is rejected with the error


# ---------------------------------------------------------------- what to do with a fingerprinted folder
class Action(Enum):
    CLAIM = "claim"                        # new content: claim it, move it, build it, commit it
    DONE = "done"                          # already ingested right here (mark mode): nothing to do
    FINISH_MOVE = "finish-move"            # ingested, but the move to processed/ never happened
    DUPLICATE = "duplicate"                # the same content dropped again after it was moved away
    QUIET = "quiet"                        # a change after ingestion was reported already
    BUSY = "busy"                          # another live watcher holds the claim
    CHANGED = "changed"                    # the name of an ingested folder with other content (move mode)
    CHANGED_IN_PLACE = "changed-in-place"  # an ingested folder changed where it lies (mark mode)
    REJECT = "reject"                      # unacceptable whatever it holds (links out, a bad name)


@dataclass(frozen=True)
class Seen:
    """The fingerprint of a folder, as far as deciding goes."""

    path: str                       # where it was dropped
    hash: str                       # its content hash
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    action: Action
    record: IngestRecord | None = None   # the record the action is about (this key's, or the one it changed)
    twin: IngestRecord | None = None     # CLAIM: the same content ingested under another path
    lines: tuple[str, ...] = ()          # REJECT: one line per problem


def decide(seen: Seen, rec: IngestRecord | None, same_path: Sequence[IngestRecord],
           same_hash: Sequence[IngestRecord], *, claimant_alive: bool, dest_exists: bool) -> Decision:
    """What to do with a folder that settled.

    ``rec`` is the record under this folder's key (path + hash), ``same_path``/``same_hash`` the records
    dropped at this path / holding this content; ``claimant_alive``: ``rec`` is claimed by another watcher
    that is still running; ``dest_exists``: ``rec``'s destination is on disk."""
    if seen.problems:
        return Decision(Action.REJECT, lines=seen.problems)
    if rec is not None:
        state = rec.get("state")
        if state == "ingested":
            if rec.get("dest") == seen.path:
                return Decision(Action.DONE, rec)
            if not dest_exists:
                return Decision(Action.FINISH_MOVE, rec)
            return Decision(Action.DUPLICATE, rec)
        if state == "changed":
            return Decision(Action.QUIET, rec)
        if state == "claimed" and rec.get("owner") and claimant_alive:
            return Decision(Action.BUSY, rec)
    earlier = sorted((r for r in same_path if r.get("state") == "ingested" and r.get("hash") != seen.hash),
                     key=lambda r: r.get("ingested") or "")
    if earlier:
        previous = earlier[-1]
        if previous.get("dest") == seen.path:
            return Decision(Action.CHANGED_IN_PLACE, previous)
        return Decision(Action.CHANGED, previous)
    twins = [r for r in same_hash if r.get("state") == "ingested" and r.get("path") != seen.path]
    return Decision(Action.CLAIM, rec, twin=twins[-1] if twins else None)


# ---------------------------------------------------------------- may this claim be committed?
CommitCheck = Literal["commit", "already", "missing", "not-claimed", "taken"]


def commit_check(rec: IngestRecord | None, prompt_id: str, *, claimant_alive: bool) -> CommitCheck:
    """Under the ledger lock, just before the prompt and its runs are written: is the claim still ours?

    ``already``: an earlier attempt did commit (the error came after the write); nothing more to write."""
    if rec is None:
        return "missing"
    if rec.get("state") == "ingested" and rec.get("prompt_id") == prompt_id:
        return "already"
    if rec.get("state") != "claimed":
        return "not-claimed"
    if rec.get("owner") and claimant_alive:
        return "taken"
    return "commit"


# ---------------------------------------------------------------- a claim left by a watcher that stopped
Recovery = Literal["busy", "rescan", "vanished", "resume"]


def recover(rec: IngestRecord, *, claimant_alive: bool, at_path: bool, at_dest: bool) -> Recovery:
    """A ``claimed`` record found at start: leave it to its live watcher, let the catch-up scan take it
    where it was dropped, resume it where it was moved, or record that it is gone."""
    if rec.get("owner") and claimant_alive:
        return "busy"
    if at_path:
        return "rescan"
    if not at_dest:
        return "vanished"
    return "resume"


# ---------------------------------------------------------------- where a rejection or a vanished claim goes
def record_key(key: str, current: IngestRecord | None, state: IngestState, moved_key: str) -> str | None:
    """The key to write a ``rejected`` or ``vanished`` record under (None: write nothing).

    Normally the folder's own (its claim, an earlier rejection).  Never over an ingest: that record is
    what keeps the content from being queued twice.  A duplicate, or a folder refused after it was
    ingested in place, shares its key (same path, same content), so its rejection is recorded under
    ``moved_key`` (keyed by where the rejected copy now lies); a claim found committed after all is
    not vanished."""
    if current is None or current.get("state") != "ingested":
        return key
    return moved_key if state == "rejected" else None


# ---------------------------------------------------------------- after an unexpected error
Stage = Literal["identity", "build", "commit", "record"]


@dataclass(frozen=True)
class Failure:
    next: Literal["retry", "give-up", "vanished"]
    delay: float = 0.0   # retry: seconds to wait


def after_failure(stage: Stage, attempts: int, *, gone: bool = False) -> Failure:
    """``attempts`` failures so far (this one included); ``gone``: the folder is no longer on disk.

    Hashing is retried for ever (a folder is only ours once claimed); a claimed folder's build or
    commit gives up after MAX_ATTEMPTS, and the folder is then rejected with the error, never left
    claimed.  Commits and records wait less: the ledger lock already waits out a busy ledger."""
    if gone and stage in ("identity", "build"):
        return Failure("vanished")
    if stage == "identity":
        return Failure("retry", min(300.0, 5.0 * 2 ** (attempts - 1)))
    if attempts >= MAX_ATTEMPTS:
        return Failure("give-up")
    if stage == "build":
        return Failure("retry", 5.0 * 2 ** (attempts - 1))
    return Failure("retry", 1.0 * 2 ** (attempts - 1))


# ---------------------------------------------------------------- names
def unique_name(name: str, taken: set[str]) -> str:
    """A prompt name not in ``taken``: ``name``, ``name-2``, ``name-3`` …"""
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    return candidate
