"""The ledger under several real processes: concurrent writers, and SIGKILL at random instants.

No mocks: each writer is a separate Python process (tests/ledger_helpers/) working on
a real folder, and crashes are real ``SIGKILL``s.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from cosmoskit._core.ledger import RUN_TERMINAL, Ledger
from cosmoskit._core.storage import JOURNAL, TMP_SUFFIX

HELPERS = Path(__file__).resolve().parent / "ledger_helpers"


def spawn(script: str, *args: object) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, str(HELPERS / script), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == "READY\n", (f"{script} did not start: {line!r} "
                               f"{proc.stderr.read() if proc.poll() is not None else ''}")
    return proc


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def disk(path: Path) -> dict:
    """A ledger file as stored, parsed independently of cosmoskit."""
    return orjson.loads(path.read_bytes()) if path.exists() else {}


def check_consistent(home: Path) -> dict[str, dict]:
    """A fresh Ledger loads; the files agree with each other. Returns {run id: (loc, doc)}."""
    root = home / "ledger"
    with Ledger(home).transaction() as tx:
        active = dict(tx.raw("active.json", "runs"))
        index = dict(tx.raw("index.json", "runs"))
        history = {m: dict(tx.raw(f"history/{m}.json", "runs")) for m in tx.history_months()}
    # the transaction recovered any interrupted commit: nothing is left half done
    assert not (root / JOURNAL).exists()
    assert not list(root.rglob(f"*{TMP_SUFFIX}"))
    # what cosmoskit read is what is on disk
    assert disk(root / "active.json").get("runs", {}).keys() == active.keys()
    where: dict[str, tuple[str, dict]] = {}
    for run_id, doc in active.items():
        assert doc["status"] not in RUN_TERMINAL, doc
        where[run_id] = ("active", doc)
    for month, runs in history.items():
        for run_id, doc in runs.items():
            assert run_id not in where, f"{run_id} is both in {where[run_id][0]} and history/{month}.json"
            assert doc["status"] in RUN_TERMINAL, doc
            assert doc["created"][:7] == month
            where[run_id] = (month, doc)
    assert {k: v["loc"] for k, v in index.items()} == {k: loc for k, (loc, _) in where.items()}
    for bak in root.rglob("*.bak"):
        orjson.loads(bak.read_bytes())  # every backup is a complete earlier version
    return where


# ---------------------------------------------------------------- concurrency
def test_four_processes_adding_250_runs_each(tmp_path: Path) -> None:
    home, go = tmp_path / "home", tmp_path / "go"
    with Ledger(home).transaction():
        pass  # create and migrate first, so the writers race only on runs
    procs = [spawn("adder.py", home, f"p{i}", 250, go) for i in range(4)]
    go.touch()
    outputs = [finish(p) for p in procs]

    acknowledged = [line for out in outputs for line in out.split()]
    assert len(acknowledged) == 1000
    assert len(set(acknowledged)) == 1000
    root = home / "ledger"
    active = disk(root / "active.json")["runs"]
    index = disk(root / "index.json")["runs"]
    assert len(active) == 1000
    assert set(active) == set(acknowledged)
    assert index == {run_id: {"loc": "active"} for run_id in active}
    # every process's runs are all there, each in its own order
    for i in range(4):
        seqs = [d["seq"] for d in active.values() if d["proc"] == f"p{i}"]
        assert seqs == list(range(250))
    assert check_consistent(home).keys() == set(acknowledged)


def test_two_processes_incrementing_a_counter(tmp_path: Path) -> None:
    home, go = tmp_path / "home", tmp_path / "go"
    with Ledger(home).transaction() as tx:
        tx.meta_set("counter", 0)
    procs = [spawn("counter.py", home, 200, go) for _ in range(2)]
    go.touch()
    for p in procs:
        finish(p)
    with Ledger(home).transaction() as tx:
        assert tx.meta_get("counter") == 400
    assert disk(home / "ledger" / "meta.json")["meta"]["counter"] == {"value": 400}


def test_deleting_or_replacing_the_lock_file_does_not_break_mutual_exclusion(tmp_path: Path) -> None:
    """An outside probe deleted ledger/.lock in a loop under load and half-wrote a run: a flock on a file
    that is deleted no longer excludes the next process.  Read-modify-writes must still never interleave."""
    import threading

    home, go = tmp_path / "home", tmp_path / "go"
    root = home / "ledger"
    with Ledger(home).transaction() as tx:
        tx.meta_set("counter", 0)
    procs = [spawn("counter.py", home, 300, go) for _ in range(3)]
    stop = threading.Event()
    vandalised = [0]

    def vandal() -> None:
        while not stop.is_set():
            lock = root / ".lock"
            try:
                lock.unlink()
            except FileNotFoundError:
                pass
            lock.write_text("")  # and replaced by a new, unlocked file
            vandalised[0] += 1

    thread = threading.Thread(target=vandal, daemon=True)
    thread.start()
    go.touch()
    try:
        for p in procs:
            finish(p, timeout=300)
    finally:
        stop.set()
        thread.join()
    assert vandalised[0] > 10, "the lock file was hardly touched; the test proved nothing"
    with Ledger(home).transaction() as tx:
        assert tx.meta_get("counter") == 900, "increments were lost: two processes were inside at once"


# ---------------------------------------------------------------- crash safety
def test_sigkill_at_random_instants_loses_no_acknowledged_write(tmp_path: Path) -> None:
    seed = int(os.environ.get("COSMOSKIT_CRASH_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    home = tmp_path / "home"
    root = home / "ledger"
    added: set[str] = set()
    completed: set[str] = set()
    in_flight = 0
    for kill in range(20):
        proc = spawn("writer.py", home)
        assert proc.stdout is not None
        # Kill after a random number of acknowledged writes (counted, not timed: a loaded machine
        # writes slower but is killed at the same point of its work), then a random instant into
        # the next transaction.
        lines: list[str] = []
        for _ in range(rng.randint(1, 12)):
            line = proc.stdout.readline()
            assert line, f"seed {seed}: the writer stopped: {proc.stderr.read() if proc.poll() is not None else ''}"
            lines.append(line)
        time.sleep(rng.uniform(0, 0.01))
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == -signal.SIGKILL, f"seed {seed}: writer died on its own: {err}"
        for line in [*lines, *out.splitlines(keepends=True)]:
            if not line.endswith("\n"):
                continue  # a line the kill cut short was never acknowledged
            word, run_id = line.split()
            (added if word == "ADD" else completed).add(run_id)
        if (root / JOURNAL).exists() or list(root.rglob(f"*{TMP_SUFFIX}")):
            in_flight += 1

        where = check_consistent(home)
        missing = added - where.keys()
        assert not missing, f"seed {seed}, kill {kill}: acknowledged runs lost: {sorted(missing)[:5]}"
        for run_id in completed:
            loc, doc = where[run_id]
            assert loc != "active" and doc["status"] == "completed", f"seed {seed}: {run_id} completion lost"
    assert len(added) >= 20, f"seed {seed}: the writer barely ran ({len(added)} runs)"
    assert completed, f"seed {seed}: no run was ever moved to history"
    print(f"seed {seed}: {len(added)} acknowledged runs, {in_flight}/20 kills interrupted a commit")
