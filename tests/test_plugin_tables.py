"""Ledger tables owned by plugins: own file, same lock and commit, numbered migrations, the ingest table adopted."""
from __future__ import annotations

import json

import orjson
import pytest

import cosmoskit
from cosmoskit import api
from cosmoskit._core.ledger import Ledger

from conftest import in_process_plugins

calls: list[str] = []


def m001_seed(table, tx):
    calls.append("m001")
    table.put("seed", {"n": 1})


def m002_bump(table, tx):
    calls.append("m002")
    for key, doc in list(table.all().items()):
        table.update(key, n=doc["n"] + 1)


class _Tables:
    def __init__(self, *tables):
        self.tables = tables

    @cosmoskit.hookimpl
    def register_tables(self, register):
        for table in self.tables:
            register(table)


@pytest.fixture
def notes_plugin():
    calls.clear()
    with in_process_plugins(notes_plugin=_Tables(api.LedgerTable("notes", "test notes", [m001_seed, m002_bump]))):
        yield


def test_a_plugin_table_lives_in_its_own_file_and_commits_with_the_transaction(tmp_path, notes_plugin):
    ledger = Ledger(tmp_path)
    with ledger.transaction() as tx:
        notes = tx.plugin_table("notes")
        assert notes.get("seed") == {"n": 2}, "migrations ran in order before first use"
        notes.put("a", {"text": "hello"})
        tx.add_prompt({"name": "p", "text": "t", "inputs": {}})
    assert json.loads((tmp_path / "ledger" / "plugins" / "notes.json").read_text())["records"]["a"] == {"text": "hello"}
    with pytest.raises(RuntimeError), ledger.transaction() as tx:
        tx.plugin_table("notes").put("b", {"text": "lost"})
        tx.plugin_table("notes").remove("a")
        raise RuntimeError("crash before commit")
    with ledger.read() as tx:
        assert set(tx.plugin_table("notes")) == {"seed", "a"}, "nothing of the failed transaction was written"
    with ledger.transaction() as tx:
        tx.plugin_table("notes").update("a", text="again")
    assert (tmp_path / "ledger" / "plugins" / "notes.json.bak").exists(), (
        "the previous version is kept, as for core files")


def test_migrations_run_once_and_are_recorded(tmp_path, notes_plugin):
    with Ledger(tmp_path).read() as tx:
        tx.plugin_table("notes")
        tx.plugin_table("notes")
    assert calls == ["m001", "m002"]
    with Ledger(tmp_path).read() as tx:  # another process, the same ledger
        assert tx.plugin_table("notes").get("seed") == {"n": 2}
    assert calls == ["m001", "m002"]
    meta = json.loads((tmp_path / "ledger" / "meta.json").read_text())
    assert {"notes:m001_seed", "notes:m002_bump"} <= set(meta["migrations"])


def test_a_table_nobody_declares_is_a_clear_error(tmp_path):
    with (
        Ledger(tmp_path).read() as tx,
        pytest.raises(api.CosmoskitError, match="no loaded plugin declares the ledger table 'nope'"),
    ):
        tx.plugin_table("nope")


def test_a_bad_table_name_is_refused():
    with pytest.raises(api.CosmoskitError, match="lower-case"):
        api.LedgerTable("Bad Name")


def test_the_ingests_of_an_older_ledger_move_to_the_drop_folder_table_without_loss(tmp_path):
    """Before plugins had tables, the drop folder's records sat in the core's ingest.json."""
    root = tmp_path / "ledger"
    with Ledger(tmp_path).transaction() as tx:
        tx.add_prompt({"name": "p", "text": "t", "inputs": {}})  # a ledger of the old layout, migrated m001
    old = {f"/drop/shot{i}|{i:064x}": {"path": f"/drop/shot{i}", "name": f"shot{i}", "hash": f"{i:064x}",
                                       "state": "ingested", "prompt_id": f"ps_{i:012x}"} for i in range(50)}
    (root / "ingest.json").write_bytes(orjson.dumps({"ingest": old}))
    with Ledger(tmp_path).transaction() as tx:
        adopted = dict(tx.plugin_table("dropfolder_ingest").all())
    assert adopted == old
    assert json.loads((root / "ingest.json").read_text()) == {"ingest": {}}, "handed over, not kept twice"
    assert json.loads((root / "plugins" / "dropfolder_ingest.json").read_text())["records"] == old
    with Ledger(tmp_path).read() as tx:  # and it happens once
        assert dict(tx.plugin_table("dropfolder_ingest").all()) == old
