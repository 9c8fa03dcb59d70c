"""Crash helper: ``writer.py HOME`` writes until it is killed.

Each iteration is one transaction that adds a run and, once a few runs are
queued, moves the oldest queued run to ``completed`` (active.json, index.json
and a history file commit together through the journal).  Only after the
transaction returned does it print ``ADD <id>`` / ``DONE <id>``: those are
acknowledged writes.
"""
from __future__ import annotations

import sys
from pathlib import Path

from cosmoskit._core.ledger import Ledger


def main() -> None:
    home = Path(sys.argv[1])
    ledger = Ledger(home)
    print("READY", flush=True)
    n = 0
    while True:
        n += 1
        with ledger.transaction() as tx:
            run = tx.add_run({"prompt_id": "ps_crash", "operation": "transfer", "pid_seq": n,
                              "params": {"pad": "x" * 200}})
            queued = sorted((r for r in tx.active_runs() if r["id"] != run["id"]), key=lambda r: r["created"])
            done = None
            if len(queued) >= 3:
                done = tx.update_run(queued[0]["id"], status="completed")["id"]
        sys.stdout.write(f"ADD {run['id']}\n" + (f"DONE {done}\n" if done else ""))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
