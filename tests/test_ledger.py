"""The ledger: transactions, damaged files and their backups, migrations, ids, active/history moves.

Multi-process and SIGKILL tests are in test_ledger_crash.py.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from cosmoskit._core import queries, storage
from cosmoskit._core.errors import CosmoskitError
from cosmoskit._core.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger

from conftest import run_cli


def disk(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_doc(**kw) -> dict:
    return {"prompt_id": "ps_test", "operation": "transfer", "params": {}, **kw}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def seeded(home: Path) -> tuple[Ledger, list[str], list[str]]:
    """A ledger with prompts and runs, each of active.json and prompts.json written twice (so a .bak exists)."""
    ledger = Ledger(home)
    with ledger.transaction() as tx:
        prompts = [tx.add_prompt({"name": "first", "text": "a"})["id"]]
        runs = [tx.add_run(run_doc())["id"]]
    with ledger.transaction() as tx:
        prompts.append(tx.add_prompt({"name": "second", "text": "b"})["id"])
        runs.append(tx.add_run(run_doc())["id"])
    root = home / "ledger"
    for name in ("active.json", "prompts.json", "index.json"):
        assert (root / f"{name}.bak").exists()
    return ledger, prompts, runs


# ---------------------------------------------------------------- damaged files
def truncate(path: Path) -> bytes:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path.read_bytes()


def break_by_hand(path: Path) -> bytes:
    # what a slip in an editor does: a comma lost between two records
    text = path.read_text()
    assert "},\"" in text
    path.write_text(text.replace("},\"", "}\"", 1))
    return path.read_bytes()


def wrong_shape(path: Path) -> bytes:
    path.write_bytes(b'{"prompts": [1, 2]}')  # valid JSON, but not a table of records
    return path.read_bytes()


def emptied(path: Path) -> bytes:
    path.write_bytes(b"")
    return b""


@pytest.mark.parametrize("name, damage, touch", [
    ("active.json", truncate, lambda tx: tx.active_runs()),
    ("prompts.json", break_by_hand, lambda tx: list(tx.prompts())),
    ("prompts.json", wrong_shape, lambda tx: list(tx.prompts())),
    ("active.json", emptied, lambda tx: tx.active_runs()),
])
def test_damaged_file_is_one_error_naming_it_and_other_files_still_work(home: Path, name, damage, touch) -> None:
    _ledger, _prompts, _runs = seeded(home)
    root = home / "ledger"
    path = root / name
    broken = damage(path)
    bak = (root / f"{name}.bak").read_bytes()

    with pytest.raises(CosmoskitError) as info, Ledger(home).transaction() as tx:
        touch(tx)
    message = str(info.value)
    assert str(path) in message and "damaged" in message
    assert "\n" not in message
    assert f"cosmoskit ledger restore {name}" in message  # a backup exists: say how to use it

    # transactions that only touch other files still work
    with Ledger(home).transaction() as tx:
        tx.meta_set("still", "works")
        tx.add_batch({"runs": []}) if name == "prompts.json" else tx.add_prompt({"name": "third", "text": "c"})
    with Ledger(home).transaction() as tx:
        assert tx.meta_get("still") == "works"

    # a write that would touch the damaged file raises, and neither it nor its backup changes
    with pytest.raises(CosmoskitError, match=name), Ledger(home).transaction() as tx:
        tx.add_run(run_doc()) if name == "active.json" else tx.add_prompt({"name": "x", "text": "x"})
    assert path.read_bytes() == broken
    assert (root / f"{name}.bak").read_bytes() == bak


def test_restore_puts_the_backup_back_and_keeps_every_damaged_file(home: Path) -> None:
    ledger, _prompts, runs = seeded(home)
    root = home / "ledger"
    bak = (root / "active.json.bak").read_bytes()
    broken = truncate(root / "active.json")

    restored, kept = ledger.store.restore("active.json")
    assert restored == root / "active.json"
    assert kept is not None and kept.parent == root and kept.read_bytes() == broken
    assert restored.read_bytes() == bak
    with Ledger(home).transaction() as tx:
        assert list(tx.raw("active.json", "runs")) == runs[:1]  # the version before the last write

    # a second restore keeps the (now healthy) file under another name: the first kept file stays
    restored2, kept2 = Ledger(home).store.restore("active.json")
    assert kept2 is not None and kept2 != kept
    assert kept.read_bytes() == broken
    assert kept2.read_bytes() == bak
    assert restored2.read_bytes() == bak

    # the ledger works again, and its next write makes a fresh backup
    with Ledger(home).transaction() as tx:
        tx.add_run(run_doc())
    assert (root / "active.json.bak").read_bytes() == bak


def test_restore_without_a_backup_or_from_a_damaged_one_refuses(home: Path) -> None:
    ledger, _, _ = seeded(home)
    root = home / "ledger"
    with pytest.raises(CosmoskitError, match="no backup"):
        ledger.store.restore("ingest.json")
    (root / "active.json.bak").write_bytes(b"{")
    before = (root / "active.json").read_bytes()
    with pytest.raises(CosmoskitError, match=r"active\.json\.bak"):
        ledger.store.restore("active.json")
    assert (root / "active.json").read_bytes() == before


def test_cli_reports_a_damaged_file_in_one_line_and_restores_it(project: Path) -> None:
    seeded(project)  # the project folder is the ledger's home
    root = project / "ledger"
    broken = truncate(root / "active.json")

    result = run_cli("run", "list", cwd=project)
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    assert "active.json" in lines[0] and "internal error" not in lines[0]

    result = run_cli("ledger", "restore", "active.json", cwd=project)
    assert result.returncode == 0, result
    kept = [p for p in root.iterdir() if p.name.startswith("active.json.damaged")]
    assert len(kept) == 1 and kept[0].read_bytes() == broken

    result = run_cli("run", "list", "--json", cwd=project)
    assert result.returncode == 0, result
    assert len(orjson.loads(result.stdout)) == 1


def test_restoring_the_index_rebuilds_it_from_the_files_so_no_run_is_stranded(project: Path) -> None:
    """An outside probe put garbage in index.json and restored its (older) backup: the worker then looped on
    `launch failed (no run rs_…)`. The index derives from the other files; it is rebuilt, never taken old."""
    ledger, _, runs = seeded(project)
    with ledger.transaction() as tx:  # a third write, so index.json.bak no longer lists every run
        runs.append(tx.add_run(run_doc())["id"])
    root = project / "ledger"
    (root / "index.json").write_text("garbage\n")
    result = run_cli("ledger", "restore", "index.json", "--json", cwd=project)
    assert result.returncode == 0, result
    done = orjson.loads(result.stdout)
    assert done["rebuilt"] and done["lost"] == [] and done["kept"]
    assert Path(done["kept"]).read_text() == "garbage\n"
    assert set(disk(root / "index.json")["runs"]) == set(runs)
    for run_id in runs:
        shown = run_cli("run", "show", run_id, "--json", cwd=project)
        assert shown.returncode == 0, shown


def test_restoring_an_older_active_file_names_the_lost_runs_and_leaves_no_dangling_id(project: Path) -> None:
    _ledger, _, runs = seeded(project)
    root = project / "ledger"
    truncate(root / "active.json")
    result = run_cli("ledger", "restore", "active.json", "--json", cwd=project)
    assert result.returncode == 0, result
    done = orjson.loads(result.stdout)
    assert done["lost"] == [f"run {runs[1]}"], "the run of the last transaction is named, exactly"
    human = run_cli("ledger", "restore", "active.json", cwd=project)  # again: nothing more is lost
    assert human.returncode == 0 and "lost" not in human.stderr, human
    for command in (("run", "show", runs[1]), ("cancel", runs[1]), ("run", "delete", runs[1], "--yes")):
        gone = run_cli(*command, cwd=project)
        assert gone.returncode == 1, gone
        assert gone.stderr.startswith("Error: no run matches") and "Traceback" not in gone.stderr, gone.stderr
        assert len(gone.stderr.strip().splitlines()) == 1
    assert run_cli("run", "show", runs[0], "--json", cwd=project).returncode == 0


@pytest.mark.parametrize("name", ["../../victim.json", "/etc/passwd", "ledger/../../victim.json", ".lock",
                                  "active.json.bak"])
def test_restore_refuses_anything_but_a_ledger_file(project: Path, name: str) -> None:
    seeded(project)
    victim = project.parent / "victim.json"
    victim.write_text("{}")
    (project.parent / "victim.json.bak").write_text('{"t": {}}')
    result = run_cli("ledger", "restore", name, cwd=project)
    assert result.returncode == 1 and result.stderr.startswith("Error: "), result
    assert victim.read_text() == "{}" and not list(project.parent.glob("victim.json.damaged*"))


# ---------------------------------------------------------------- the transaction API
def test_one_transaction_reads_each_file_once_and_writes_each_changed_file_once(home, monkeypatch) -> None:
    _ledger, _prompts, runs = seeded(home)
    reads: Counter[str] = Counter()
    installs: Counter[str] = Counter()
    commits: list[list[str]] = []
    real_load, real_install, real_commit = storage.load_json, storage.Store._install, storage.Store.commit

    def load_json(path):
        reads[str(path.relative_to(home / "ledger"))] += 1
        return real_load(path)

    def install(tmp, dest):
        installs[str(dest.relative_to(home / "ledger"))] += 1
        return real_install(tmp, dest)

    def commit(self, files):
        commits.append(sorted(str(f.path.relative_to(self.root)) for f in files if f.dirty))
        return real_commit(self, files)

    monkeypatch.setattr(storage, "load_json", load_json)
    monkeypatch.setattr(storage.Store, "_install", staticmethod(install))
    monkeypatch.setattr(storage.Store, "commit", commit)

    with Ledger(home).transaction() as tx:
        pid = tx.add_prompt({"name": "p", "text": "t"})["id"]
        tx.update_prompt(pid, {"text": "t2"})
        new = [tx.add_run(run_doc(prompt_id=pid))["id"] for _ in range(3)]
        tx.update_run(new[0], status="running")
        tx.update_run(new[1], status="completed")  # moves to history
        tx.update_run(runs[0], status="failed")
        tx.meta_set("a", 1)
        tx.meta_set("b", tx.meta_get("a") + 1)
        assert tx.resolve_run(new[2][3:10]) == new[2]
        assert len(queries.list_runs(tx, limit=50)) == 5
        assert tx.run(new[1])["status"] == "completed"
        assert tx.prompt(pid)["text"] == "t2"

    month = f"history/{tx.run(new[1])['created'][:7]}.json"
    changed = sorted(["active.json", "index.json", "meta.json", "prompts.json", month])
    assert commits == [changed]
    assert installs == Counter(changed)
    assert reads and max(reads.values()) == 1, reads
    assert set(reads) >= {"active.json", "index.json", "meta.json", "prompts.json"}

    with Ledger(home).transaction() as tx:
        assert tx.meta_get("b") == 2
        assert tx.run(new[1])["status"] == "completed" and tx.run(runs[0])["status"] == "failed"


def test_a_read_only_transaction_writes_nothing(home) -> None:
    ledger, _, _ = seeded(home)
    before = snapshot(home / "ledger")
    with ledger.read() as tx:
        list(tx.runs()), list(tx.prompts()), tx.meta_get("queue")
    assert snapshot(home / "ledger") == before


def test_an_exception_inside_the_transaction_writes_nothing(home) -> None:
    ledger, _prompts, runs = seeded(home)
    root = home / "ledger"
    before = snapshot(root)
    with pytest.raises(ValueError), ledger.transaction() as tx:
        tx.add_run(run_doc())
        tx.update_run(runs[0], status="completed")
        tx.add_prompt({"name": "x", "text": "y"})
        tx.meta_set("counter", 99)
        raise ValueError("boom")
    assert snapshot(root) == before
    with ledger.transaction() as tx:
        assert tx.meta_get("counter") is None
        assert set(tx.raw("index.json", "runs")) == set(runs)


def test_an_exception_in_the_very_first_transaction_does_not_lose_the_migrations(home) -> None:
    ledger = Ledger(home)
    with pytest.raises(ValueError), ledger.transaction() as tx:
        tx.add_run(run_doc())
        raise ValueError("boom")
    assert not (home / "ledger" / "meta.json").exists()
    with ledger.transaction() as tx:
        tx.add_run(run_doc())
    meta = disk(home / "ledger" / "meta.json")
    assert "m001_initial" in meta["migrations"]


# ---------------------------------------------------------------- migrations
def test_a_new_ledger_records_its_migrations(home) -> None:
    with Ledger(home).transaction() as tx:
        assert tx.meta_get("schema_version") == SCHEMA_VERSION == len(MIGRATIONS)
        assert tx.meta_get("queue") == {"paused": False}
    meta = disk(home / "ledger" / "meta.json")
    assert "m001_initial" in meta["migrations"]
    assert set(meta["migrations"]) == {fn.__name__ for fn in MIGRATIONS}
    assert meta["meta"]["schema_version"] == {"value": SCHEMA_VERSION}
    # migrations run once: a second ledger object changes nothing
    before = snapshot(home / "ledger")
    with Ledger(home).transaction():
        pass
    assert snapshot(home / "ledger") == before


def test_a_ledger_from_a_newer_cosmoskit_is_refused(home) -> None:
    with Ledger(home).transaction():
        pass
    path = home / "ledger" / "meta.json"
    meta = disk(path)
    meta["migrations"]["m999_from_the_future"] = {"applied_at": "2099-01-01T00:00:00+00:00"}
    path.write_bytes(orjson.dumps(meta))
    before = snapshot(home / "ledger")
    with pytest.raises(CosmoskitError, match="newer cosmoskit") as info, Ledger(home).transaction() as tx:
        tx.add_run(run_doc())
    assert "m999_from_the_future" in str(info.value)
    assert snapshot(home / "ledger") == before


# ---------------------------------------------------------------- ids
def test_resolve_run_by_unique_prefix(home) -> None:
    ids = ["rs_abc123000001", "rs_abc456000002", "rs_f00d00000003", "rs_f00d00000003ff"]
    with Ledger(home).transaction() as tx:
        for i, run_id in enumerate(ids):
            tx.add_run(run_doc(id=run_id, status="completed" if i == 1 else "queued"))
    with Ledger(home).read() as tx:
        assert tx.resolve_run("abc1") == "rs_abc123000001"
        assert tx.resolve_run("rs_abc1") == "rs_abc123000001"
        assert tx.resolve_run("abc4") == "rs_abc456000002"  # in history: the index knows it
        assert tx.get_run("abc4")["status"] == "completed"
        assert tx.resolve_run("rs_f00d00000003") == "rs_f00d00000003"  # a full id is never ambiguous
        with pytest.raises(CosmoskitError, match="matches 2 runs"):
            tx.resolve_run("abc")
        with pytest.raises(CosmoskitError, match="matches 2 runs"):
            tx.resolve_run("f00d")
        with pytest.raises(CosmoskitError, match="at least one character"):
            tx.resolve_run("rs_")
        with pytest.raises(CosmoskitError, match="no run matches"):
            tx.resolve_run("zzz")
        with pytest.raises(CosmoskitError, match="no run matches"):
            tx.resolve_run("rs_abc9")
        with pytest.raises(CosmoskitError, match="not a run id"):
            tx.resolve_run("ps_abc1")


# ---------------------------------------------------------------- active and history
def where_on_disk(home: Path, kind: str, doc_id: str) -> list[str]:
    """Every file that holds the document, read straight from disk."""
    root = home / "ledger"
    files = [root / "active.json", *sorted((root / "history").glob("*.json"))]
    return [str(f.relative_to(root)) for f in files if doc_id in disk(f).get(kind, {})]


def test_runs_move_to_history_when_finished_and_back_when_requeued(home) -> None:
    with Ledger(home).transaction() as tx:
        run = tx.add_run(run_doc(created="2024-03-15T10:00:00.000000+00:00"))
        born_done = tx.add_run(run_doc(created="2024-01-02T00:00:00.000000+00:00", status="cancelled"))
        batch = tx.add_batch({"runs": [run["id"]], "created": "2024-03-15T10:00:00.000000+00:00"})
    rid = run["id"]
    index = lambda: disk(home / "ledger" / "index.json")  # noqa: E731
    assert where_on_disk(home, "runs", rid) == ["active.json"]
    assert where_on_disk(home, "runs", born_done["id"]) == ["history/2024-01.json"]
    assert index()["runs"][born_done["id"]] == {"loc": "2024-01"}

    for status in ("staging", "running", "fetching"):
        with Ledger(home).transaction() as tx:
            tx.update_run(rid, status=status)
        assert where_on_disk(home, "runs", rid) == ["active.json"]
    for terminal in ("completed", "failed", "cancelled"):
        with Ledger(home).transaction() as tx:
            tx.update_run(rid, status=terminal, error=None)
        assert where_on_disk(home, "runs", rid) == ["history/2024-03.json"]
        assert index()["runs"][rid] == {"loc": "2024-03"}
        with Ledger(home).transaction() as tx:
            assert tx.run(rid)["status"] == terminal
            assert rid not in tx.raw("active.json", "runs")
            tx.update_run(rid, rating=4)  # a change that keeps it terminal keeps it in place
        assert where_on_disk(home, "runs", rid) == ["history/2024-03.json"]
        with Ledger(home).transaction() as tx:
            tx.update_run(rid, status="queued")  # requeued
        assert where_on_disk(home, "runs", rid) == ["active.json"]
        assert index()["runs"][rid] == {"loc": "active"}
    with Ledger(home).read() as tx:
        doc = tx.run(rid)
        assert doc["status"] == "queued" and doc["rating"] == 4 and doc["created"].startswith("2024-03-15")

    with Ledger(home).transaction() as tx:
        tx.update_batch(batch["id"], state="running")
    assert where_on_disk(home, "batches", batch["id"]) == ["active.json"]
    with Ledger(home).transaction() as tx:
        tx.update_batch(batch["id"], state="done")
    assert where_on_disk(home, "batches", batch["id"]) == ["history/2024-03.json"]
    assert index()["batches"][batch["id"]] == {"loc": "2024-03"}

    with Ledger(home).transaction() as tx:
        tx.delete_run(born_done["id"])
    assert where_on_disk(home, "runs", born_done["id"]) == []
    assert born_done["id"] not in index()["runs"]


def test_list_runs_is_newest_first_across_active_and_history(home) -> None:
    # a year of runs: the queue (active.json) holds only recent ones, as it does in real use
    # (test_list_runs_finds_a_finished_run_newer_than_the_queue is the case this avoids)
    stamps = []
    with Ledger(home).transaction() as tx:
        for month in range(1, 13):
            for day in range(1, 8):
                stamp = f"2024-{month:02d}-{day * 4:02d}T12:00:00.000000+00:00"
                stamps.append(stamp)
                statuses = ("queued", "completed", "failed", "running", "cancelled") if month >= 11 else \
                    ("completed", "failed", "cancelled")
                tx.add_run(run_doc(created=stamp, status=statuses[(month + day) % len(statuses)]))
    with Ledger(home).read() as tx:
        assert len(tx.history_months()) == 12
        got = queries.list_runs(tx, limit=50)
        assert [r["created"] for r in got] == sorted(stamps, reverse=True)[:50]
        assert {r["status"] for r in got} > {"queued", "completed"}
        every = queries.list_runs(tx)
        assert [r["created"] for r in every] == sorted(stamps, reverse=True)
        finished = queries.list_runs(tx, status=["completed"], limit=5)
        assert [r["created"] for r in finished] == sorted(
            (r["created"] for r in every if r["status"] == "completed"), reverse=True)[:5]


def test_list_runs_finds_a_finished_run_newer_than_the_queue(home) -> None:
    with Ledger(home).transaction() as tx:
        for day in range(1, 4):
            tx.add_run(run_doc(created=f"2024-05-0{day}T00:00:00.000000+00:00"))  # queued early in May
        newest = tx.add_run(run_doc(created="2024-05-20T00:00:00.000000+00:00", status="completed"))
    with Ledger(home).read() as tx:
        got = queries.list_runs(tx, limit=3)
    assert got[0]["id"] == newest["id"]


# ---------------------------------------------------------------- owners
def test_a_zombie_or_a_recycled_pid_is_not_a_live_owner() -> None:
    import os
    import subprocess
    import sys

    from cosmoskit._core import owner

    me = owner.me()
    assert owner.alive(me) and owner.is_me(me)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = {"pid": child.pid, "host": me["host"], "start": owner._start_time(child.pid)}
        assert owner.alive(record)
        assert not owner.alive({**record, "start": "1"}), "the same pid with another start time is another process"
        child.kill()
        deadline = __import__("time").monotonic() + 30
        while (owner._stat(child.pid) or ("?",))[0] != "Z" and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.01)
        assert owner._stat(child.pid)[0] == "Z", "the killed child is a zombie until it is reaped"
        assert not owner.alive(record), "killed but not reaped is dead"
    finally:
        child.wait()
    assert not owner.alive(record)
    assert not owner.alive({"pid": os.getpid(), "host": me["host"], "start": "1"})
