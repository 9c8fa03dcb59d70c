"""The ledger: prompts, runs and batches in TinyDB files, and the tables plugins keep beside them.

Files under ``<home>/ledger/`` (each a TinyDB database of string-keyed tables):

- ``meta.json``     schema version, applied migrations, queue settings
- ``prompts.json``  every prompt
- ``active.json``   runs and batches that have not finished: the hot queue
- ``history/YYYY-MM.json``  finished runs and batches, by month of creation
- ``index.json``    where every run and batch id lives (``active`` or a month)
- ``plugins/<table>.json``  tables plugins declared (``register_tables``; the drop folder's ingests)

The queue only ever touches the small ``active.json``: a run moves to its
month file when it finishes, so years of history cost the hot path nothing.
All access goes through :meth:`Ledger.transaction`: one cross-process lock,
each file read at most once, and all changed files committed atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from cosmoskit._core import ids, timeutil
from cosmoskit._core.errors import CosmoskitError
from cosmoskit._core.records import BatchRecord, BatchState, PromptRecord, RunRecord, RunStatus
from cosmoskit._core.storage import FileState, Store

if TYPE_CHECKING:
    from cosmoskit._core.tables import PluginTable

RUN_STATUSES: tuple[RunStatus, ...] = ("queued", "staging", "running", "fetching", "completed", "failed", "cancelled")
RUN_ACTIVE: frozenset[str] = frozenset(RUN_STATUSES[:4])
RUN_TERMINAL: frozenset[str] = frozenset(RUN_STATUSES[4:])
BATCH_STATES: tuple[BatchState, ...] = (
    "staging",
    "staged",  # at its place, waiting for the batch before it on its GPUs to exit (cosmoskit/_core/slots.py)
    "running",
    "fetching",
    "done",
    "failed",
    "cancelled",
    "lost",
)
BATCH_ACTIVE: frozenset[str] = frozenset(BATCH_STATES[:4])

ACTIVE = "active"


def _doc(value: dict[str, Any], key: str) -> Document:
    """A TinyDB document under one of our string ids (TinyDB's annotations say int; StrTable's ids are str)."""
    return Document(value, doc_id=key)  # type: ignore[arg-type]


def _missing(kind: str, record_id: str) -> CosmoskitError:
    return CosmoskitError(
        f"the ledger's index lists {kind} {record_id} but its file does not hold it",
        hint="`cosmoskit verify --fix` rebuilds the index from the files",
    )


def _ids(*keys: str) -> list[int]:
    """Our string ids where TinyDB's annotations say ints."""
    return cast("list[int]", list(keys))


class StrTable(Table):
    """A TinyDB table keyed by our string ids instead of integers."""

    document_id_class = str  # type: ignore[assignment]


class StrTinyDB(TinyDB):
    table_class = StrTable


class _TxStorage(Storage):
    """TinyDB storage that reads and writes a transaction's cached FileState."""

    def __init__(self, state: FileState) -> None:
        self.state = state

    def read(self) -> dict[str, Any] | None:
        return self.state.read()

    def write(self, data: dict[str, Any]) -> None:
        self.state.write(data)


# ---------------------------------------------------------------- migrations
MIGRATIONS: list[Callable[[Tx], None]] = []
migration = MIGRATIONS.append


@migration
def m001_initial(tx: Tx) -> None:
    tx.meta_set("queue", {"paused": False})


SCHEMA_VERSION = len(MIGRATIONS)


class Ledger:
    def __init__(self, home: Path, lock_timeout: float = 120.0) -> None:
        self.home = Path(home)
        self.root = self.home / "ledger"
        self.store = Store(self.root, lock_timeout)
        self._migrated = False
        self._migrated_tables: set[str] = set()  # plugin tables this process has brought up to date

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Everything inside happens under the lock and commits as one, or not at all."""
        with self.store.locked():
            tx = Tx(self)
            migrating = not self._migrated
            if migrating:
                tx.migrate()
            yield tx
            self.store.commit(list(tx.files.values()))
            if migrating:
                # only once committed: a transaction that raised wrote nothing, migrations included
                self._migrated = True
            self._migrated_tables.update(tx._tables_migrated)

    # reads use the same lock: they are short, and a reader never sees half a commit
    read = transaction


class Tx:
    """One transaction's view of the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.files: dict[str, FileState] = {}
        self._dbs: dict[str, StrTinyDB] = {}
        self._tables_migrated: list[str] = []

    # ------------------------------------------------------------ plumbing
    def _state(self, rel: str) -> FileState:
        if rel not in self.files:
            self.files[rel] = FileState(self.ledger.root / rel)
        return self.files[rel]

    def table(self, rel: str, name: str) -> StrTable:
        if rel not in self._dbs:
            self._dbs[rel] = StrTinyDB(self._state(rel), storage=_TxStorage)
        return self._dbs[rel].table(name, cache_size=0)  # type: ignore[return-value]

    def raw(self, rel: str, name: str) -> dict[str, dict[str, Any]]:
        """The stored table as a dict, without copying.  Read-only."""
        data = self._state(rel).read() or {}
        table: dict[str, dict[str, Any]] = data.get(name, {})
        return table

    @staticmethod
    def _month_file(month: str) -> str:
        return f"history/{month}.json"

    def _file_of(self, loc: str) -> str:
        return "active.json" if loc == ACTIVE else self._month_file(loc)

    def history_months(self) -> list[str]:
        folder = self.ledger.root / "history"
        months = {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()
        # month files this transaction created are not on disk until it commits
        months.update(
            rel[len("history/") : -len(".json")]
            for rel, state in self.files.items()
            if rel.startswith("history/") and state.dirty
        )
        return sorted(months, reverse=True)

    # ------------------------------------------------------------ meta
    def meta_get(self, key: str, default: Any = None) -> Any:
        doc = self.raw("meta.json", "meta").get(key)
        return default if doc is None else doc.get("value", default)

    def meta_set(self, key: str, value: Any) -> None:
        table = self.table("meta.json", "meta")
        table.upsert(_doc({"value": value}, key))

    def migrate(self) -> None:
        applied = self.raw("meta.json", "migrations")
        known = {fn.__name__ for fn in MIGRATIONS}
        unknown = {name for name in applied if ":" not in name} - known  # table:name are plugins' own
        if unknown:
            raise CosmoskitError(
                f"the ledger in {self.ledger.root} was written by a newer cosmoskit "
                f"(migrations {', '.join(sorted(unknown))})",
                hint="upgrade cosmoskit",
            )
        table = self.table("meta.json", "migrations")
        for fn in MIGRATIONS:
            if fn.__name__ not in applied:
                fn(self)
                table.insert(_doc({"applied_at": timeutil.now()}, fn.__name__))
                self.meta_set("schema_version", SCHEMA_VERSION)

    # ------------------------------------------------------------ prompts
    def add_prompt(self, doc: dict[str, Any]) -> PromptRecord:
        doc.setdefault("id", ids.new_id("ps"))
        doc.setdefault("created", timeutil.now())
        self.table("prompts.json", "prompts").insert(_doc(doc, doc["id"]))
        return cast(PromptRecord, doc)

    def prompt(self, prompt_id: str) -> PromptRecord | None:
        doc = self.raw("prompts.json", "prompts").get(prompt_id)
        return cast(PromptRecord, dict(doc)) if doc is not None else None

    def get_prompt(self, text: str) -> PromptRecord:
        prompt_id = self.resolve_prompt(text)
        prompt = self.prompt(prompt_id)
        if prompt is None:  # resolved from this very file: cannot happen unless the file changed under us
            raise _missing("prompt", prompt_id)
        return prompt

    def prompts(self) -> Iterable[PromptRecord]:
        """Read-only records; copy before changing."""
        return cast(Iterable[PromptRecord], self.raw("prompts.json", "prompts").values())

    def update_prompt(self, prompt_id: str, changes: dict[str, Any]) -> None:
        self.table("prompts.json", "prompts").update(changes, doc_ids=_ids(prompt_id))

    def delete_prompt(self, prompt_id: str) -> None:
        self.table("prompts.json", "prompts").remove(doc_ids=_ids(prompt_id))

    def resolve_prompt(self, text: str) -> str:
        """A prompt by its id, its unique name (`transfer blocked` after `prompt create … --name blocked`),
        or a unique prefix of its id, in that order."""
        prompts = self.raw("prompts.json", "prompts")
        if text in prompts:
            return text
        named = [pid for pid, p in prompts.items() if p.get("name") == text]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise CosmoskitError(f"{len(named)} prompts are named {text!r} ({', '.join(sorted(named)[:3])}); use an id")
        return self._resolve("ps", text, prompts.keys(), names=True)

    # ------------------------------------------------------------ runs and batches
    def _add(self, kind: str, docs: list[dict[str, Any]]) -> None:
        if not docs:
            return
        by_loc: dict[str, list[dict[str, Any]]] = {}
        index = self.table("index.json", kind)
        terminal = RUN_TERMINAL if kind == "runs" else frozenset(BATCH_STATES) - BATCH_ACTIVE
        field = "status" if kind == "runs" else "state"
        for doc in docs:
            loc = doc["created"][:7] if doc[field] in terminal else ACTIVE
            by_loc.setdefault(loc, []).append(doc)
        for loc, group in by_loc.items():
            self.table(self._file_of(loc), kind).insert_multiple(_doc(d, d["id"]) for d in group)
        index.insert_multiple(_doc({"loc": loc}, d["id"]) for loc, g in by_loc.items() for d in g)

    def _loc(self, kind: str, doc_id: str) -> str | None:
        entry = self.raw("index.json", kind).get(doc_id)
        return entry["loc"] if entry else None

    def _get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        loc = self._loc(kind, doc_id)
        if loc is None:
            return None
        doc = self.raw(self._file_of(loc), kind).get(doc_id)
        return dict(doc) if doc is not None else None

    def _update(self, kind: str, doc_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        loc = self._loc(kind, doc_id)
        if loc is None:
            raise CosmoskitError(f"no {kind[:-1]} {doc_id}")
        current = self.raw(self._file_of(loc), kind)[doc_id]
        field = "status" if kind == "runs" else "state"
        active_states = RUN_ACTIVE if kind == "runs" else BATCH_ACTIVE
        new_state = changes.get(field, current[field])
        new_loc = ACTIVE if new_state in active_states else current["created"][:7]
        changes = {**changes, "updated": timeutil.now()}
        if new_loc == loc:
            self.table(self._file_of(loc), kind).update(changes, doc_ids=_ids(doc_id))
            return {**current, **changes}
        doc = {**current, **changes}
        self.table(self._file_of(loc), kind).remove(doc_ids=_ids(doc_id))
        self.table(self._file_of(new_loc), kind).insert(_doc(doc, doc_id))
        self.table("index.json", kind).update({"loc": new_loc}, doc_ids=_ids(doc_id))
        return doc

    def _delete(self, kind: str, doc_id: str) -> None:
        loc = self._loc(kind, doc_id)
        if loc is None:
            return
        self.table(self._file_of(loc), kind).remove(doc_ids=_ids(doc_id))
        self.table("index.json", kind).remove(doc_ids=_ids(doc_id))

    def _iter(
        self, kind: str, *, active: bool = True, history: bool = True, months: Iterable[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Read-only documents; copy before changing."""
        if active:
            yield from self.raw("active.json", kind).values()
        if history:
            for month in months if months is not None else self.history_months():
                yield from self.raw(self._month_file(month), kind).values()

    # runs
    def add_run(self, doc: dict[str, Any]) -> RunRecord:
        return self.add_runs([doc])[0]

    def add_runs(self, docs: list[dict[str, Any]] | list[RunRecord]) -> list[RunRecord]:
        stamp = timeutil.now()
        for doc in docs:
            doc.setdefault("id", ids.new_id("rs"))
            doc.setdefault("created", stamp)
            doc.setdefault("status", "queued")
        self._add("runs", cast(list[dict[str, Any]], docs))
        return cast(list[RunRecord], docs)

    def run(self, run_id: str) -> RunRecord | None:
        return cast("RunRecord | None", self._get("runs", run_id))

    def get_run(self, text: str) -> RunRecord:
        run_id = self.resolve_run(text)
        run = self.run(run_id)
        if run is None:
            raise _missing("run", run_id)
        return run

    def update_run(self, run_id: str, **changes: Any) -> RunRecord:
        return cast(RunRecord, self._update("runs", run_id, changes))

    def delete_run(self, run_id: str) -> None:
        self._delete("runs", run_id)

    def runs(self, **kw: Any) -> Iterator[RunRecord]:
        return cast(Iterator[RunRecord], self._iter("runs", **kw))

    def active_runs(self) -> list[RunRecord]:
        """Read-only records of unfinished runs; copy before changing."""
        return cast(list[RunRecord], list(self.raw("active.json", "runs").values()))

    def resolve_run(self, text: str) -> str:
        return self._resolve("rs", text, self.raw("index.json", "runs").keys())

    # batches
    def add_batch(self, doc: dict[str, Any]) -> BatchRecord:
        doc.setdefault("id", ids.new_id("bt"))
        doc.setdefault("created", timeutil.now())
        doc.setdefault("state", "staging")
        self._add("batches", [doc])
        return cast(BatchRecord, doc)

    def batch(self, batch_id: str) -> BatchRecord | None:
        return cast("BatchRecord | None", self._get("batches", batch_id))

    def get_batch(self, text: str) -> BatchRecord:
        batch_id = self.resolve_batch(text)
        batch = self.batch(batch_id)
        if batch is None:
            raise _missing("batch", batch_id)
        return batch

    def update_batch(self, batch_id: str, **changes: Any) -> BatchRecord:
        return cast(BatchRecord, self._update("batches", batch_id, changes))

    def batches(self, **kw: Any) -> Iterator[BatchRecord]:
        return cast(Iterator[BatchRecord], self._iter("batches", **kw))

    def active_batches(self) -> list[BatchRecord]:
        """Read-only records of unfinished batches; copy before changing."""
        return cast(list[BatchRecord], list(self.raw("active.json", "batches").values()))

    def resolve_batch(self, text: str) -> str:
        return self._resolve("bt", text, self.raw("index.json", "batches").keys())

    def _resolve(self, kind: str, text: str, candidates: Iterable[str], *, names: bool = False) -> str:
        """ids.resolve, naming the project it looked in when nothing matches (the wrong folder is the
        usual reason)."""
        try:
            return ids.resolve(kind, text, candidates, names=names)
        except CosmoskitError as exc:
            if exc.message.startswith("no "):
                raise CosmoskitError(f"{exc.message} in the project at {self.ledger.home}", hint=exc.hint) from None
            raise

    # ------------------------------------------------------------ plugin tables
    def plugin_table(self, name: str) -> PluginTable:
        """A table a plugin declared with ``register_tables``, migrated to its newest version."""
        from cosmoskit._core import plugins
        from cosmoskit._core.tables import PluginTable

        declared = plugins.registry("register_tables").get(name)
        if declared is None:
            raise CosmoskitError(f"no loaded plugin declares the ledger table {name!r}")
        table = PluginTable(self._state(f"plugins/{name}.json"))
        if name not in self.ledger._migrated_tables and name not in self._tables_migrated:
            applied = self.raw("meta.json", "migrations")
            log = self.table("meta.json", "migrations")
            for fn in declared.migrations:
                key = f"{name}:{fn.__name__}"
                if key not in applied:
                    fn(table, self)
                    log.insert(_doc({"applied_at": timeutil.now()}, key))
            self._tables_migrated.append(name)
        return table

    def legacy_records(self, rel: str, name: str) -> dict[str, dict[str, Any]]:
        """Hand over a table an older cosmoskit kept in the core ledger (``ingest.json`` …) to the
        plugin migration that adopts it; the core file is emptied in the same commit."""
        records = dict(self.raw(rel, name))
        if records:
            self._state(rel).write({name: {}})
        return records
