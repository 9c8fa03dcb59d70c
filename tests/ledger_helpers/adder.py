"""Concurrency helper: ``adder.py HOME TAG COUNT GO_FILE`` adds COUNT runs, one transaction each.

Waits for GO_FILE to exist so that every process starts writing at the same moment;
prints each run id (after its transaction returned) on stdout.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from cosmoskit._core.ledger import Ledger


def main() -> None:
    home, tag, count, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    ledger = Ledger(home)
    print("READY", flush=True)
    while not go.exists():
        time.sleep(0.002)
    for i in range(count):
        with ledger.transaction() as tx:
            run = tx.add_run({"prompt_id": "ps_concurrent", "operation": "transfer", "proc": tag, "seq": i})
        print(run["id"], flush=True)


if __name__ == "__main__":
    main()
