"""The ingest record: what the ledger's ``dropfolder_ingest`` table keeps for each dropped folder.

Keyed by the path the folder was dropped at plus its content hash (``contents.ingest_key``).  These
functions only build records; ``ingests`` writes them.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from cosmoskit_dropfolder.contents import Fingerprint, printable

IngestState = Literal["claimed", "ingested", "rejected", "changed", "vanished"]
RejectWhy = Literal["input", "error", "duplicate", "changed"]


class IngestRecord(TypedDict, total=False):
    path: str                  # where the folder was dropped
    name: str
    hash: str                  # content hash (SHA-256 of every file's name and content)
    state: IngestState
    owner: Mapping[str, Any] | None   # the watcher process holding a claim
    dest: str                  # where the folder lives (processed/NAME, rejected/NAME, or the path itself)
    claimed: str
    sig: str
    files: int
    bytes: int
    attempts: int
    prompt_id: str
    runs: list[str]
    ingested: str
    why: RejectWhy
    reasons: list[str]
    rejected: str
    reported: str
    ingested_as: str | None


def claim(fp: Fingerprint, owner: Mapping[str, Any], dest: str, stamp: str) -> IngestRecord:
    return {"path": fp.path, "name": fp.name, "hash": fp.hash, "state": "claimed", "owner": owner, "dest": dest,
            "claimed": stamp, "sig": fp.sig_digest, "files": fp.files, "bytes": fp.bytes, "attempts": 0}


def changed(fp: Fingerprint, previous: IngestRecord, stamp: str) -> IngestRecord:
    return {"path": fp.path, "name": fp.name, "hash": fp.hash, "state": "changed", "dest": fp.path,
            "reported": stamp, "sig": fp.sig_digest, "ingested_as": previous.get("prompt_id")}


def ingested(claimed: IngestRecord, prompt_id: str, run_ids: list[str], dest: str, stamp: str) -> IngestRecord:
    return {**claimed, "state": "ingested", "prompt_id": prompt_id, "runs": run_ids, "dest": dest,
            "ingested": stamp, "owner": None}


def rejected(fp: Fingerprint, why: RejectWhy, lines: list[str], dest: str, stamp: str) -> IngestRecord:
    # printable(): a folder rejected for an undecodable name must still be recordable (orjson refuses
    # lone surrogates), and the reasons may quote what the ledger could not write
    return {"path": printable(fp.path), "name": fp.name, "hash": fp.hash, "state": "rejected", "why": why,
            "reasons": [printable(line) for line in lines[:50]], "dest": printable(dest), "owner": None,
            "rejected": stamp}
