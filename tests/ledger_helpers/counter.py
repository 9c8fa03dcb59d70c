"""Concurrency helper: ``counter.py HOME COUNT GO_FILE`` increments meta ``counter`` COUNT times.

Each increment is a read-modify-write in its own transaction.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from cosmoskit._core.ledger import Ledger


def main() -> None:
    home, count, go = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    ledger = Ledger(home)
    print("READY", flush=True)
    while not go.exists():
        time.sleep(0.002)
    for _ in range(count):
        with ledger.transaction() as tx:
            value = tx.meta_get("counter", 0)
            tx.meta_set("counter", value + 1)


if __name__ == "__main__":
    main()
