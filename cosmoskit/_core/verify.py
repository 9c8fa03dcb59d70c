"""Checking the ledger against itself and the filesystem, and the repairs that lose nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from cosmoskit._core import media
from cosmoskit._core.ledger import ACTIVE, BATCH_ACTIVE, RUN_ACTIVE, Ledger, Tx
from cosmoskit._core.queries import run_folder


@dataclass
class Finding:
    kind: str
    subject: str
    detail: str
    fixable: bool
    fixed: bool = False
    action: str = ""

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    def add(self, kind: str, subject: str, detail: str, fixable: bool) -> Finding:
        f = Finding(kind, subject, detail, fixable)
        self.findings.append(f)
        return f


def _scan_locations(tx: Tx, kind: str) -> dict[str, str]:
    """Where each document actually is, from the files themselves."""
    found = dict.fromkeys(tx.raw("active.json", kind), ACTIVE)
    for month in tx.history_months():
        for doc_id in tx.raw(f"history/{month}.json", kind):
            found.setdefault(doc_id, month)
    return found


def check(ledger: Ledger, home: Path, *, fix: bool = False, deep: bool = False) -> Report:
    report = Report()
    with ledger.transaction() as tx:
        # 1. the index against the files
        for kind, state_field, active_states in (("runs", "status", RUN_ACTIVE), ("batches", "state", BATCH_ACTIVE)):
            actual = _scan_locations(tx, kind)
            index = tx.raw("index.json", kind)
            broken = {i for i in index if i not in actual} | {
                i for i, loc in actual.items() if index.get(i, {}).get("loc") != loc
            }
            for doc_id in sorted(broken):
                f = report.add("index", doc_id, f"index entry of {kind[:-1]} {doc_id} does not match the files", True)
                if fix:
                    f.fixed, f.action = True, "rebuilt the index entry"
            if fix and broken:
                table = tx.table("index.json", kind)
                table.truncate()
                from cosmoskit._core.ledger import _doc

                table.insert_multiple(_doc({"loc": loc}, i) for i, loc in actual.items())
            # documents stored where their state does not belong
            for doc_id, loc in actual.items():
                doc = tx.raw(tx._file_of(loc), kind)[doc_id]
                should_be_active = doc[state_field] in active_states
                if should_be_active != (loc == ACTIVE):
                    f = report.add(
                        "placement",
                        doc_id,
                        f"{kind[:-1]} {doc_id} ({doc[state_field]}) is stored in the wrong file",
                        True,
                    )
                    if fix:
                        getattr(tx, "update_run" if kind == "runs" else "update_batch")(
                            doc_id, **{state_field: doc[state_field]}
                        )
                        f.fixed, f.action = True, "moved it"

        # 2. runs that claim to be in flight without a live batch
        live_batches = {b["id"] for b in tx.active_batches()}
        for run in list(tx.active_runs()):
            if run["status"] != "queued" and run.get("batch_id") not in live_batches:
                f = report.add(
                    "stuck",
                    run["id"],
                    f"run is {run['status']} but its batch {run.get('batch_id')} is not running",
                    True,
                )
                if fix:
                    tx.update_run(run["id"], status="queued", batch_id=None)
                    f.fixed, f.action = True, "requeued it"

        # 3. prompt inputs
        for prompt in tx.prompts():
            for key, item in prompt.get("inputs", {}).items():
                path = Path(item["path"])
                if not path.exists():
                    report.add("input", prompt["id"], f"{key} video {path} is missing", False)
                elif path.stat().st_size != item.get("bytes", path.stat().st_size):
                    report.add(
                        "input", prompt["id"], f"{key} video {path} changed size since the prompt was made", False
                    )
                elif deep and media.sha256_file(path) != item.get("sha256"):
                    report.add(
                        "input", prompt["id"], f"{key} video {path} changed content since the prompt was made", False
                    )

        # 4. outputs of completed runs
        known_runs = set(tx.raw("index.json", "runs"))
        for run in tx.runs(active=False):
            if run["status"] != "completed":
                continue
            missing = [name for name, p in (run.get("outputs") or {}).items() if not Path(home, p).exists()]
            if missing and missing != run.get("missing_outputs"):
                f = report.add("output", run["id"], f"completed run lost {', '.join(missing)}", True)
                if fix:
                    tx.update_run(run["id"], missing_outputs=missing)
                    f.fixed, f.action = True, "recorded the missing outputs on the run"

        # 5. run folders the ledger does not know
        outputs = home / "outputs"
        if outputs.is_dir():
            for folder in sorted(outputs.glob("run_rs_*")):
                run_id = folder.name[len("run_") :]
                if run_id in known_runs:
                    continue
                snapshot = folder / "run.json"
                f = report.add("orphan", run_id, f"{folder} has no run in the ledger", snapshot.is_file())
                if fix and snapshot.is_file():
                    doc = orjson.loads(snapshot.read_bytes())
                    if doc.get("status") in RUN_ACTIVE:
                        doc["status"], doc["error"] = "failed", "re-imported by verify --fix while unfinished"
                    tx.add_runs([doc])
                    f.fixed, f.action = True, "re-imported it from run.json"
    return report


def run_snapshot_path(home: Path, run_id: str) -> Path:
    return run_folder(home, run_id) / "run.json"


@dataclass
class Restored:
    """What ``ledger restore`` did: the file put back (or rebuilt), where the damaged one went, which
    acknowledged records the older copy does not hold, and the repairs that made the rest consistent."""

    path: Path
    kept: Path | None
    rebuilt: bool
    lost: list[str]
    repairs: list[Finding]


def _keep_aside(path: Path) -> Path | None:
    if not path.exists():
        return None
    import time

    stamp = time.strftime("%Y%m%dT%H%M%S")
    kept, n = path.with_name(f"{path.name}.damaged-{stamp}"), 1
    while kept.exists():
        n += 1
        kept = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    path.rename(kept)
    return kept


def _indexed(root: Path) -> dict[str, dict[str, str]] | None:
    """Where the index says each run and batch lives, or None when the index cannot be read."""
    from cosmoskit._core.errors import CosmoskitError
    from cosmoskit._core.storage import load_json

    try:
        data = load_json(root / "index.json") or {}
    except CosmoskitError:
        return None
    return {kind: {i: str(e.get("loc")) for i, e in data.get(kind, {}).items()} for kind in ("runs", "batches")}


def restore(ledger: Ledger, home: Path, name: str) -> Restored:
    """Put a damaged ledger file right and leave the whole ledger consistent.

    ``index.json`` derives from the other files, so it is rebuilt from them rather than taken
    from an older copy.  Any other file gets its backup back; records the index placed in it
    that the backup does not hold are named as lost (a run folder's ``run.json`` brings back
    what it can), and everything that depended on them is repaired as ``verify --fix`` would."""
    store = ledger.store
    path = store.path_of(name)
    rel = path.relative_to(store.root.resolve()).as_posix()
    with store.locked():
        before = _indexed(store.root)
        if rel == "index.json":
            kept, rebuilt = _keep_aside(path), True
        else:
            path, kept = store.restore(rel)
            rebuilt = False
        report = check(ledger, home, fix=True)
        after = _indexed(store.root) or {"runs": {}, "batches": {}}
    lost = []
    if before is not None and not rebuilt:
        loc = {"active.json": "active"}.get(rel) or (rel[len("history/") : -len(".json")] if "/" in rel else None)
        for kind in ("runs", "batches"):
            for record_id, where in sorted(before[kind].items()):
                if where == loc and record_id not in after[kind]:
                    lost.append(f"{kind[:-1]} {record_id}")
    if rel == "prompts.json":
        with ledger.read() as tx:
            known = set(tx.raw("prompts.json", "prompts"))
            wanted = {pid for r in tx.runs() if (pid := r.get("prompt_id"))}
        lost += [f"prompt {p} (its runs remain)" for p in sorted(wanted - known)]
    repairs = [f for f in report.findings if f.fixed]
    return Restored(path, kept, rebuilt, lost, repairs)
