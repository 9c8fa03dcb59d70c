"""What this plugin keeps: the ``watch:`` section of cosmoskit.yaml and the ingest table of the ledger."""
from __future__ import annotations

from cosmoskit.api import Field, LedgerTable, PluginTable, Section, Tx, between, non_negative, positive

WATCH = Section("watch", {
    "folder": Field(str, "drop", "drop folder, relative to home"),
    "settle_seconds": Field(float, 10.0, "a folder with no change for this long is complete", check=non_negative),
    "after": Field(str, "move", "after ingest: move to processed/ or mark in place", choices=("move", "mark")),
    "polling": Field(bool, False, "poll instead of inotify (for NFS/SMB drop folders)"),
    "rescan_seconds": Field(float, 5.0, "full rescan of the drop folder this often (events can be lost)",
                            check=positive),
    "jobs": Field(int, 4, "folders hashed and encoded at the same time", check=positive),
    "prompt": Field(str, None, "prompt text for folders without cosmos.yaml/prompt.txt (null: reject them)",
                    nullable=True),
    "priority": Field(int, 0, "queue priority of runs from the drop folder unless the sidecar gives one"),
    "fps": Field(float, 24.0, "frame rate of frame sequences unless the sidecar gives one", check=between(1, 240)),
}, "the drop folder: a render copied in becomes queued runs (cosmoskit watch)")


def m001_from_core_ledger(table: PluginTable, tx: Tx) -> None:
    """Ledgers written before plugins had tables kept the ingests in the core's ``ingest.json``."""
    for key, doc in tx.legacy_records("ingest.json", "ingest").items():
        table.put(key, doc)


INGESTS = "dropfolder_ingest"
INGEST_TABLE = LedgerTable(INGESTS, "drop-folder entries already seen, by folder path and content hash",
                           [m001_from_core_ledger])
