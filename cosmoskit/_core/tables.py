"""Ledger tables owned by plugins: each its own file under ``ledger/plugins/``, its own numbered migrations.

A plugin declares a table with ``register_tables``; inside any ledger transaction
``tx.plugin_table(name)`` gives it, with the same lock, the same all-or-nothing commit
and the same ``.bak`` as the core's files.  Its migrations run once, in order,
the first time a process opens the table, and are recorded in ``meta.json`` as
``<table>:<migration>`` beside the core's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cosmoskit._core.errors import CosmoskitError

if TYPE_CHECKING:
    from cosmoskit._core.ledger import Tx
    from cosmoskit._core.storage import FileState

TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
Migration = Callable[["PluginTable", "Tx"], None]


@dataclass
class LedgerTable:
    """A table a plugin keeps in the ledger: ``name`` (also its file, ``ledger/plugins/<name>.json``),
    what it holds, and its migrations in order (each ``fn(table, tx)``; append, never reorder)."""

    name: str
    description: str = ""
    migrations: list[Migration] = field(default_factory=list)
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not TABLE_NAME.match(self.name):
            raise CosmoskitError(f"ledger table name {self.name!r} must be lower-case letters, digits and _")


class PluginTable:
    """A plugin's records inside one transaction: string keys to JSON objects."""

    def __init__(self, state: FileState) -> None:
        self._state = state

    def _records(self) -> dict[str, dict[str, Any]]:
        data = self._state.read() or {}
        records = data.get("records", {})
        return records if isinstance(records, dict) else {}

    def get(self, key: str) -> dict[str, Any] | None:
        doc = self._records().get(key)
        return dict(doc) if doc is not None else None

    def all(self) -> dict[str, dict[str, Any]]:
        """Every record (read-only: change them with ``put``/``update``)."""
        return self._records()

    def __iter__(self) -> Iterator[str]:
        return iter(self._records())

    def __len__(self) -> int:
        return len(self._records())

    def put(self, key: str, doc: dict[str, Any]) -> None:
        """Insert or replace one record."""
        self._write({**self._records(), key: dict(doc)})

    def update(self, key: str, **changes: Any) -> dict[str, Any]:
        current = self._records().get(key)
        if current is None:
            raise CosmoskitError(f"no record {key!r} in this ledger table")
        doc = {**current, **changes}
        self._write({**self._records(), key: doc})
        return doc

    def remove(self, key: str) -> None:
        records = self._records()
        if key in records:
            self._write({k: v for k, v in records.items() if k != key})

    def _write(self, records: dict[str, dict[str, Any]]) -> None:
        self._state.write({"records": records})
