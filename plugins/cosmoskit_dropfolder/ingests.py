"""The drop folder's ledger writes: claims, the commit of one folder, and records of what else happened.

Every decision that needs the ingest table is made inside the transaction that acts on it, so two
watchers (threads or processes) never both claim or both commit one folder.  A folder is committed
through the engine's queue, in a transaction of its own: the prompt, its runs and the ingest record,
all or nothing, and one folder's failure never touches another's.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosmoskit import api
from cosmoskit_dropfolder import records
from cosmoskit_dropfolder.build import Built
from cosmoskit_dropfolder.contents import Fingerprint, ingest_key, printable
from cosmoskit_dropfolder.decisions import (
    Action,
    CommitCheck,
    Decision,
    Seen,
    after_failure,
    commit_check,
    decide,
    record_key,
    unique_name,
)
from cosmoskit_dropfolder.records import IngestRecord
from cosmoskit_dropfolder.settings import INGESTS


def claimant_alive(rec: IngestRecord | None) -> bool:
    """The record is held by another watcher process that still runs."""
    owner = (rec or {}).get("owner")
    return bool(owner) and not api.owner_is_me(owner) and api.owner_alive(owner)


class _NotOurs(Exception):
    """Raised inside the commit transaction to write nothing: the claim is no longer this watcher's."""

    def __init__(self, check: CommitCheck, state: str | None) -> None:
        super().__init__(check)
        self.check, self.state = check, state


class Ingests:
    def __init__(self, ledger: Any, engine: Any, me: Mapping[str, Any]) -> None:
        self.ledger = ledger
        self.engine = engine   # cosmoskit.api.Engine: its queue() is the submit path of new runs
        self.me = me

    def decide_and_claim(self, prints: list[Fingerprint],
                         plan_dest: Callable[[Fingerprint], Path]) -> list[tuple[Decision, Path | None]]:
        """Decide every fingerprint against the ingest table and write what the decision needs (a claim,
        with the folder it will live in; a change report) in one transaction; one answer per print."""
        out: list[tuple[Decision, Path | None]] = []
        stamp = api.now()
        with self.ledger.transaction() as tx:
            table = tx.plugin_table(INGESTS)
            recs: dict[str, IngestRecord] = table.all()
            rec: IngestRecord | None
            by_path: dict[str | None, list[IngestRecord]] = {}
            by_hash: dict[str | None, list[IngestRecord]] = {}
            for rec in recs.values():
                by_path.setdefault(rec.get("path"), []).append(rec)
                by_hash.setdefault(rec.get("hash"), []).append(rec)
            for fp in prints:
                rec = recs.get(fp.key) if not fp.problems else None
                decision = decide(Seen(fp.path, fp.hash, tuple(fp.problems)), rec, by_path.get(fp.path, []),
                                  by_hash.get(fp.hash, []), claimant_alive=claimant_alive(rec),
                                  dest_exists=bool(rec and rec.get("dest") and Path(rec["dest"]).exists()))
                dest = None
                if decision.action is Action.CLAIM:
                    dest = plan_dest(fp)
                    table.put(fp.key, records.claim(fp, self.me, str(dest), stamp))
                elif decision.action is Action.CHANGED_IN_PLACE:
                    assert decision.record is not None
                    table.put(fp.key, records.changed(fp, decision.record, stamp))
                out.append((decision, dest))
        return out

    def check(self, b: Built) -> tuple[CommitCheck, str | None]:
        """Whether ``b`` may be committed, read without writing (``already``: it was)."""
        with self.ledger.read() as tx:
            rec: IngestRecord | None = tx.plugin_table(INGESTS).get(b.fp.key)
        return commit_check(rec, b.prompt["id"], claimant_alive=claimant_alive(rec)), (rec or {}).get("state")

    def commit(self, b: Built) -> tuple[CommitCheck, str | None]:
        """Add the folder's prompt and runs and mark its record ``ingested``, in one transaction through the
        engine, after checking under the ledger lock that the claim is still this watcher's.

        Returns ``commit`` (written now), ``already`` (an earlier attempt wrote it) or why it was not
        written, with the record's state; a failing ledger write raises, and nothing was written."""
        if b.attempts:  # an earlier attempt may have written it (the error came after): the engine
            check, state = self.check(b)  # would refuse to add the prompt again, so do not ask it to
            if check != "commit":
                return check, state

        def also(tx: Any) -> None:
            table = tx.plugin_table(INGESTS)
            rec: IngestRecord | None = table.get(b.fp.key)
            check = commit_check(rec, b.prompt["id"], claimant_alive=claimant_alive(rec))
            if check != "commit" or rec is None:
                raise _NotOurs(check, (rec or {}).get("state"))
            if not b.named_by_sidecar:  # a folder's name is made unique among prompts; a sidecar's is kept
                taken = {p.get("name") for p in tx.prompts() if p.get("id") != b.prompt["id"]}
                name = unique_name(b.prompt["name"], taken)
                if name != b.prompt["name"]:
                    tx.update_prompt(b.prompt["id"], {"name": name})
                    b.prompt["name"] = name
            table.put(b.fp.key, records.ingested(rec, b.prompt["id"], [r["id"] for r in b.runs], str(b.dest),
                                                 api.now()))

        try:
            self.engine.queue(b.runs, prompts=[b.prompt], also=also)
        except _NotOurs as lost:
            return lost.check, lost.state
        return "commit", "ingested"

    def record(self, key: str, changes: IngestRecord) -> None:
        """Merge a ``rejected`` or ``vanished`` state into a record, in a transaction of its own (a bad
        record spoils no other); an ingest is never overwritten (``decisions.record_key``)."""
        with self.ledger.transaction() as tx:
            table = tx.plugin_table(INGESTS)
            target = record_key(printable(key), table.get(printable(key)), changes.get("state", "rejected"),
                                printable(ingest_key(changes.get("dest") or "", changes.get("hash") or "")))
            if target is not None:
                table.put(target, {**(table.get(target) or {}), **changes})

    def claims(self) -> list[tuple[str, IngestRecord]]:
        with self.ledger.read() as tx:
            return [(k, r) for k, r in tx.plugin_table(INGESTS).all().items()
                    if r.get("state") == "claimed"]


@dataclass
class Pending:
    key: str
    changes: IngestRecord
    attempts: int = 0   # failed writes so far
    at: float = 0.0     # monotonic time of the next try


class Backlog:
    """Records to write (a rejection, a vanished claim): each in a transaction of its own, retried when
    the ledger refuses one, and reported when it gives up (never dropped without a word)."""

    def __init__(self, ingests: Ingests) -> None:
        self.ingests = ingests
        self.items: list[Pending] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, key: str, changes: IngestRecord) -> None:
        self.items.append(Pending(key, changes))

    def next_at(self, soonest: float) -> float:
        return min([soonest, *(p.at for p in self.items)])

    def write(self, now: float) -> list[tuple[str | None, str]]:
        """Write what is due; one (folder, message) per failed write."""
        errors: list[tuple[str | None, str]] = []
        items, self.items = self.items, []
        for p in items:
            if p.at > now:
                self.items.append(p)
                continue
            try:
                self.ingests.record(p.key, p.changes)
            except Exception as exc:
                p.attempts += 1
                plan = after_failure("record", p.attempts)
                name = p.changes.get("name")
                what = f"could not record {p.changes.get('state')} for {name or p.key} in the ledger ({exc})"
                if plan.next == "give-up":
                    errors.append((name, f"{what}; gave up after {p.attempts} attempts"))
                else:
                    errors.append((name, f"{what}; trying again in {plan.delay:g} s"))
                    p.at = now + plan.delay
                    self.items.append(p)
        return errors
