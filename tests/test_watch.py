"""``cosmoskit watch`` with a real watchdog observer on temporary folders: complete-only, exactly once,
catch-up after a restart, rejections with their reason, one run per weight set."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import configure
from test_prepare import frames

FAST = {"settle_seconds": 0.5, "rescan_seconds": 1.0}


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Houdini-style sequence, 6 frames of 32x18 (colour, grey depth, flat-colour seg), made once."""
    root = tmp_path_factory.mktemp("template") / "seq"
    frames(root, "color.%04d.png", "rgb")
    frames(root, "depth.%04d.png", "depth")
    frames(root, "segmentation.%04d.png", "seg")
    return root


@pytest.fixture
def drop(project: Path) -> Path:
    configure(project, watch=FAST)
    return project / "drop"


def sequence(template: Path, dest: Path, text: str | None = "a wet street at night", **files: str) -> Path:
    shutil.copytree(template, dest)
    if text is not None:
        (dest / "prompt.txt").write_text(text)
    for name, body in files.items():
        (dest / name.replace("__", ".")).write_text(body)
    return dest


def ledger_state() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, dict[str, Any]]]:
    from cosmoskit._core import context

    with context.ledger().read() as tx:
        return list(tx.runs()), list(tx.prompts()), dict(tx.plugin_table("dropfolder_ingest").all())


def runs() -> list[dict[str, Any]]:
    return ledger_state()[0]


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Session:
    def __init__(self) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.error: BaseException | None = None

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [e for _, e in self.events if e["event"] == kind]


@contextmanager
def watching(**kw: Any) -> Iterator[Session]:
    """A DropWatcher with its real observer, in a thread, for the duration of the block."""
    from cosmoskit._core import context
    from cosmoskit_dropfolder.watcher import DropWatcher

    session = Session()
    watcher = DropWatcher(context.settings(), context.ledger(),
                          emit=lambda e: session.events.append((time.time(), e)), **kw)
    stop = threading.Event()

    def target() -> None:
        try:
            watcher.run(stop)
        except BaseException as exc:  # the test fails on it below
            session.error = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert watcher.caught_up.wait(10), "the watcher did not start"
    try:
        yield session
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "the watcher did not stop"
        assert session.error is None, f"the watcher crashed: {session.error!r}"


def run_once(**kw: Any) -> Session:
    from cosmoskit._core import context
    from cosmoskit_dropfolder.watcher import DropWatcher

    session = Session()
    DropWatcher(context.settings(), context.ledger(), emit=lambda e: session.events.append((time.time(), e)),
                **kw).run(once=True)
    return session


def slow_copy(src: Path, dest: Path, pause: float) -> float:
    """Copy a folder file by file, each file in two writes, sleeping ``pause`` between writes."""
    dest.mkdir()
    for f in sorted(src.iterdir()):
        data = f.read_bytes()
        half = len(data) // 2
        with open(dest / f.name, "wb") as out:
            out.write(data[:half])
            out.flush()
            time.sleep(pause)
            out.write(data[half:])
        time.sleep(pause)
    return time.time()


def test_slow_copy_is_queued_once_and_only_when_complete(project, template):
    configure(project, watch={"settle_seconds": 1.0, "rescan_seconds": 0.5})
    drop = project / "drop"
    source = sequence(template, project / "stage" / "slow", "slow copy")
    with watching() as s:
        finished = slow_copy(source, drop / "slow", pause=0.1)  # 19 files, ~3.8 s, never 1 s quiet
        assert runs() == [], "queued while the copy was still running"
        wait_for(lambda: len(runs()) == 1, what="the run")
        time.sleep(1.5)  # more events, a rescan or two: still one
        queued = s.kinds("queued")
    assert len(runs()) == 1 and len(queued) == 1
    assert next(t for t, e in s.events if e["event"] == "queued") >= finished + 1.0
    [prompt] = ledger_state()[1]
    assert prompt["frames"] == 6 and set(prompt["inputs"]) == {"rgb", "depth", "seg"}
    assert (drop / "processed" / "slow" / "INGESTED.txt").is_file() and not (drop / "slow").exists()


def test_ready_marker_takes_a_folder_at_once_and_not_before(project, template):
    configure(project, watch={"settle_seconds": 60.0, "rescan_seconds": 0.5})
    drop = project / "drop"
    source = sequence(template, project / "stage" / "marked", "marked copy")
    with watching() as s:
        slow_copy(source, drop / "marked", pause=0.02)
        time.sleep(1.0)
        assert runs() == []
        ready_at = time.time()
        (drop / "marked" / "READY").touch()
        wait_for(lambda: len(runs()) == 1, timeout=10, what="the run")
        took = time.time() - ready_at
    assert took < 3.0 and len(s.kinds("queued")) == 1


def test_200_folders_dropped_at_once_give_200_runs(drop, videos, project):
    stage = project / "stage"
    for i in range(200):
        d = stage / f"scene{i:03d}"
        d.mkdir(parents=True)
        os.link(videos["scene"] / "color.mp4", d / "color.mp4")
        (d / "prompt.txt").write_text(f"scene number {i}")
    with watching() as s:
        for d in sorted(stage.iterdir()):
            os.rename(d, drop / d.name)
        wait_for(lambda: len(runs()) >= 200, timeout=60, what="200 runs")
        time.sleep(1.5)  # late events and a rescan change nothing
    all_runs, prompts, ingests = ledger_state()
    assert len(all_runs) == 200 and len({r["prompt_id"] for r in all_runs}) == 200
    assert sorted(p["text"] for p in prompts) == sorted(f"scene number {i}" for i in range(200))
    assert len(ingests) == 200 and {r["state"] for r in ingests.values()} == {"ingested"}
    assert len({r["path"] for r in ingests.values()}) == 200
    assert len(list((drop / "processed").iterdir())) == 200 and not list((drop / "rejected").iterdir())
    assert len(s.kinds("queued")) == 200 and not s.kinds("error")


def test_restart_catches_up_without_duplicates(drop, template, project):
    drop.mkdir()
    sequence(template, drop / "a")
    sequence(template, drop / "b", "second scene", READY="")
    first = run_once()
    assert len(first.kinds("queued")) == 2 and len(runs()) == 2
    assert first.kinds("catch-up")[0]["folders"] == 2
    # while no watcher runs: a new folder, the same folder dropped again, and one with an old name but new content
    sequence(template, drop / "c", "third scene")
    shutil.copytree(drop / "processed" / "a", drop / "a")
    (drop / "a" / "INGESTED.txt").unlink()
    sequence(template, drop / "b", "second scene, rendered again")
    second = run_once()
    assert [e["folder"] for e in second.kinds("queued")] == ["c"]
    assert [e["folder"] for e in second.kinds("duplicate")] == ["a"]
    assert [e["folder"] for e in second.kinds("changed")] == ["b"]
    assert "not queued again" in (drop / "rejected" / "a" / "REJECTED.txt").read_text()
    assert "rename the folder (e.g. b-v2)" in (drop / "rejected" / "b" / "REJECTED.txt").read_text()
    third = run_once()
    assert not third.kinds("queued") and len(runs()) == 3


def test_marked_in_place_then_touched_then_changed(project, template):
    configure(project, watch={**FAST, "after": "mark"})
    drop = project / "drop"
    drop.mkdir()
    sequence(template, drop / "kept")
    assert len(run_once().kinds("queued")) == 1
    assert (drop / "kept" / "INGESTED.txt").is_file() and (drop / "kept" / "color.mp4").is_file()
    with watching() as s:
        os.utime(drop / "kept" / "color.0001.png")            # a re-touch: same content
        time.sleep(1.5)
        assert len(runs()) == 1 and not s.kinds("changed")
        data = (drop / "kept" / "segmentation.0001.png").read_bytes()
        (drop / "kept" / "color.0001.png").write_bytes(data)   # a real change after ingestion
        wait_for(lambda: bool(s.kinds("changed")), what="the change report")
        time.sleep(1.5)
    assert len(runs()) == 1 and len(s.kinds("changed")) == 1 and not s.kinds("queued")
    again = run_once()  # a restart reports nothing twice and queues nothing
    assert not again.kinds("changed") and not again.kinds("queued") and len(runs()) == 1


def test_a_watcher_that_died_mid_ingest_is_resumed_exactly_once(drop, template):
    from cosmoskit._core import context
    from cosmoskit_dropfolder.watcher import content_hash, ingest_key, walk

    dead = {"pid": 2 ** 22 + 12345, "host": socket.gethostname(), "start": "0"}
    moved = sequence(template, drop / "processed" / "moved", "moved but not committed")
    stayed = sequence(template, drop / "stayed", "claimed but not moved")
    with context.ledger().transaction() as tx:
        for folder, path, dest in ((moved, drop / "moved", moved),
                                   (stayed, drop / "stayed", drop / "processed" / "stayed")):
            digest, _files, _size = content_hash(folder, walk(folder))
            tx.plugin_table("dropfolder_ingest").put(ingest_key(str(path), digest), {
                "path": str(path), "name": folder.name, "hash": digest, "state": "claimed", "owner": dead,
                "dest": str(dest)})
    session = run_once()
    assert sorted(e["folder"] for e in session.kinds("queued")) == ["moved", "stayed"]
    assert [e["folder"] for e in session.kinds("resume")] == ["moved"]
    _, prompts, ingests = ledger_state()
    assert len(runs()) == 2 and {r["state"] for r in ingests.values()} == {"ingested"} and len(ingests) == 2
    assert sorted(p["text"] for p in prompts) == ["claimed but not moved", "moved but not committed"]
    assert not run_once().kinds("queued")


BAD = {
    "no-rgb": "no RGB frames or video",
    "counts": "depth.0006.png: missing (the RGB frames go on to color.0006.png)",
    "unreadable": "color.0003.png: truncated (the file ends inside its IDAT chunk)",
    "bad-yaml": "cosmos.yaml:3: broken YAML",
    "bad-key": "cosmos.yaml:2: unknown key 'wieghts'",
    "bad-weight": "cosmos.yaml:2: weight vis=2 is outside 0..1",
    "no-prompt": "no prompt text: add cosmos.yaml",
    "link-out": "notes.txt: a symbolic link to /etc/hostname; names may not reach outside the folder",
    "name-out": "the name '../../evil' holds a path separator",
    "linked-folder": "is a symbolic link",
}


def test_each_kind_of_bad_folder_is_rejected_with_its_reason(drop, template, project):
    stage = project / "stage"
    no_rgb = stage / "no-rgb"
    frames(no_rgb, "depth.%04d.png", "depth")
    (no_rgb / "prompt.txt").write_text("x")
    counts = sequence(template, stage / "counts")
    (counts / "depth.0006.png").unlink()
    unreadable = sequence(template, stage / "unreadable")
    data = (unreadable / "color.0003.png").read_bytes()
    (unreadable / "color.0003.png").write_bytes(data[: len(data) // 2])
    sequence(template, stage / "bad-yaml", None, cosmos__yaml="prompt: fine\nweights: {vis: 0.3\n")
    sequence(template, stage / "bad-key", None, cosmos__yaml="prompt: fine\nwieghts: {vis: 0.3}\n")
    sequence(template, stage / "bad-weight", None, cosmos__yaml="prompt: fine\nweights: {vis: 2}\n")
    sequence(template, stage / "no-prompt", None)
    os.symlink("/etc/hostname", sequence(template, stage / "link-out") / "notes.txt")
    sequence(template, stage / "name-out", None, cosmos__yaml="prompt: fine\nname: ../../evil\n")
    outside = sequence(template, project / "elsewhere")
    with watching() as s:
        for d in sorted(stage.iterdir()):
            os.rename(d, drop / d.name)
        os.symlink(outside, drop / "linked-folder")
        wait_for(lambda: len(s.kinds("rejected")) == len(BAD), what="every rejection")
        sequence(template, drop / "good", READY="")  # the watcher is still alive and well
        wait_for(lambda: len(runs()) == 1, what="the good folder")
    for name, reason in BAD.items():
        report = (drop / "rejected" / name / "REJECTED.txt")
        if name == "linked-folder":
            assert (drop / "rejected" / name).is_symlink()
            assert reason in next(e["message"] for e in s.kinds("rejected") if e["folder"] == name)
            continue
        assert reason in report.read_text(), (name, report.read_text())
    _, _, ingests = ledger_state()
    states = {r["name"]: r["state"] for r in ingests.values()}
    assert states == {**dict.fromkeys(BAD, "rejected"), "good": "ingested"}
    assert len(s.kinds("rejected")) == len(BAD) and not s.kinds("error")
    assert os.path.exists("/etc/hostname") and (project / "elsewhere" / "color.0001.png").exists()


def test_a_sidecar_sweep_gives_every_combination_in_one_sweep(drop, template):
    drop.mkdir()
    sequence(template, drop / "swept", None, cosmos__yaml="""\
prompt: A street, photoreal
seed: 1-3
num_steps: [20, 35]
weights:
  - "vis=1"
  - {weights: "edge=1", seed: 9}
""")
    session = run_once()
    [queued] = session.kinds("queued")
    all_runs, _, _ = ledger_state()
    by_id = {r["id"]: r for r in all_runs}
    ordered = [by_id[i] for i in queued["runs"]]
    got = [(r["params"]["weights"], r["params"]["seed"], r["params"]["num_steps"]) for r in ordered]
    assert got == [({"vis": 1.0}, s, n) for s in (1, 2, 3) for n in (20, 35)] + \
        [({"edge": 1.0}, 9, n) for _ in (1, 2, 3) for n in (20, 35)], got
    assert len({r["sweep"] for r in ordered}) == 1 and ordered[0]["sweep"].startswith("sw_")


def test_a_sidecar_with_three_weight_sets_gives_three_runs(drop, template):
    drop.mkdir()
    sequence(template, drop / "triple", None, cosmos__yaml="""\
prompt: A rainy street at night, photoreal
negative_prompt: cartoon, blurry
name: rainy-street
priority: 3
fps: 12
seed: 9
weights:
  - {vis: 0.3, depth: 0.5}
  - "edge=0.6,seg=0.4"
  - {weights: {depth: 1.0}, seed: 11, priority: 7}
""")
    session = run_once()
    [queued] = session.kinds("queued")
    all_runs, [prompt], ingests = ledger_state()
    by_id = {r["id"]: r for r in all_runs}
    ordered = [by_id[i] for i in queued["runs"]]
    assert [r["params"]["weights"] for r in ordered] == [{"vis": 0.3, "depth": 0.5}, {"edge": 0.6, "seg": 0.4},
                                                         {"depth": 1.0}]
    assert [r["priority"] for r in ordered] == [3, 3, 7]
    assert [r["params"]["seed"] for r in ordered] == [9, 9, 11]
    assert {r["status"] for r in ordered} == {"queued"} and {r["prompt_id"] for r in ordered} == {prompt["id"]}
    assert prompt["name"] == "rainy-street" and prompt["negative_prompt"] == "cartoon, blurry"
    assert prompt["fps"] == 12.0 and prompt["frames"] == 6
    assert all(r["params"]["negative_prompt"] == "cartoon, blurry" and r["params"]["fps"] == 12 for r in ordered)
    [record] = ingests.values()
    assert record["runs"] == queued["runs"] and record["prompt_id"] == prompt["id"]
    assert all(i in (drop / "processed" / "triple" / "INGESTED.txt").read_text() for i in queued["runs"])


def test_rescans_alone_find_folders_when_events_are_lost(drop, template, monkeypatch):
    from cosmoskit_dropfolder.watcher import DropWatcher

    monkeypatch.setattr(DropWatcher, "_start_observer", lambda self: None)  # as if every event were lost
    with watching() as s:
        sequence(template, drop / "quiet")
        wait_for(lambda: len(runs()) == 1, what="the run from a rescan")
    assert len(s.kinds("queued")) == 1


def test_watch_command_with_work_turns_a_drop_into_finished_runs(project, cli, videos):
    configure(project, watch={**FAST, "prompt": "a default prompt from the configuration"})
    drop = project / "drop"
    shutil.copytree(videos["scene"], drop / "scene")
    (drop / "notes.md").write_text("a file at the top: ignored")
    result = cli("watch", "--once", "--work", "--json")
    assert result.exit_code == 0, result
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "watching" and "queued" in kinds and "ignored" in kinds and kinds[-1] == "stopped"
    [run] = runs()
    assert run["status"] == "completed", run
    assert ledger_state()[1][0]["text"] == "a default prompt from the configuration"
    human = cli("watch", "--once")
    assert human.exit_code == 0 and "stopped: 0 folder(s) queued" in human.stderr


def test_two_watcher_processes_on_one_drop_folder_queue_each_folder_once(drop, template, project):
    drop.mkdir()
    for i in range(30):
        sequence(template, project / "stage" / f"s{i:02d}", f"scene {i}", READY="")
    exe = shutil.which("cosmoskit", path=os.path.dirname(sys.executable)) or "cosmoskit"
    other = subprocess.Popen([exe, "watch", "--json"], cwd=project, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        first = other.stdout.readline()  # the other one is up: now race it
        with watching() as s:
            for d in sorted((project / "stage").iterdir()):  # both watchers see them arrive
                os.rename(d, drop / d.name)
            wait_for(lambda: len(runs()) >= 30, timeout=60, what="30 runs")
            time.sleep(1.0)
        other.terminate()  # SIGTERM: the watch command stops cleanly
        out, err = other.communicate(timeout=240)
        out = first + out
    finally:
        if other.poll() is None:
            other.kill()
    assert other.returncode == 0, err
    theirs = [e["folder"] for e in map(json.loads, out.splitlines()) if e["event"] == "queued"]
    ours = [e["folder"] for e in s.kinds("queued")]
    assert sorted(theirs + ours) == [f"s{i:02d}" for i in range(30)]  # each folder queued by exactly one
    all_runs, prompts, ingests = ledger_state()
    assert len(all_runs) == 30 and len({p["text"] for p in prompts}) == 30
    assert {r["state"] for r in ingests.values()} == {"ingested"} and len(ingests) == 30
    assert len(list((drop / "processed").iterdir())) == 30 and not list((drop / "rejected").iterdir())


def test_polling_observer_for_network_drop_folders(project, template):
    configure(project, watch={**FAST, "polling": True, "rescan_seconds": 60.0})  # events only from polling
    with watching() as s:
        sequence(template, project / "drop" / "on-nfs", READY="")
        wait_for(lambda: len(runs()) == 1, what="the run")
    assert "(polling)" in s.kinds("watching")[0]["message"] and len(s.kinds("queued")) == 1


def test_a_folder_the_ledger_cannot_record_is_rejected_and_spares_the_other(drop, template):
    # the sidecar's name passes the sidecar checks but orjson refuses to write it: the commit itself fails
    drop.mkdir()
    sequence(template, drop / "good", "a valid folder dropped beside a bad one", READY="")
    sequence(template, drop / "unwritable", None, READY="",
             cosmos__yaml='prompt: fine\nname: "bad\\udcff"\n')
    session = run_once()
    assert [e["folder"] for e in session.kinds("queued")] == ["good"]
    assert [e["folder"] for e in session.kinds("rejected")] == ["unwritable"]
    all_runs, prompts, ingests = ledger_state()
    assert len(all_runs) == 1 and [p["text"] for p in prompts] == ["a valid folder dropped beside a bad one"]
    states = {r["name"]: r["state"] for r in ingests.values()}
    assert states == {"good": "ingested", "unwritable": "rejected"}  # never left claimed
    assert (drop / "rejected" / "unwritable" / "REJECTED.txt").is_file()
    assert not (drop / "processed" / "unwritable").exists()
    assert (drop / "processed" / "good" / "INGESTED.txt").is_file()
    again = run_once()  # a restart does not try it again
    assert not again.kinds("queued") and not again.kinds("resume") and not again.kinds("error")
    assert {r["name"]: r["state"] for r in ledger_state()[2].values()} == states


def test_a_commit_that_keeps_failing_rejects_that_folder_alone_with_the_reason(drop, template, monkeypatch):
    from cosmoskit._core.ledger import Tx

    add_prompt = Tx.add_prompt

    def failing(self: Any, doc: dict[str, Any]) -> dict[str, Any]:
        if doc.get("name") == "explode":
            raise OSError(28, "No space left on device")
        return add_prompt(self, doc)

    monkeypatch.setattr(Tx, "add_prompt", failing)
    drop.mkdir()
    for name in ("a", "b"):
        sequence(template, drop / name, f"scene {name}", READY="")
    sequence(template, drop / "boom", None, READY="", cosmos__yaml="prompt: fine\nname: explode\n")
    session = run_once()
    assert sorted(e["folder"] for e in session.kinds("queued")) == ["a", "b"]
    [rejected] = session.kinds("rejected")
    assert rejected["folder"] == "boom"
    report = (drop / "rejected" / "boom" / "REJECTED.txt").read_text()
    assert "could not be recorded in the ledger" in report and "No space left on device" in report
    _, _, ingests = ledger_state()
    [record] = [r for r in ingests.values() if r["name"] == "boom"]
    assert record["state"] == "rejected" and "No space left on device" in record["reasons"][0]
    assert sorted(r["state"] for r in ingests.values()) == ["ingested", "ingested", "rejected"]
    assert len(runs()) == 2
    monkeypatch.setattr(Tx, "add_prompt", add_prompt)
    again = run_once()
    assert not again.kinds("queued") and not again.kinds("resume") and len(runs()) == 2


def test_a_folder_with_an_undecodable_name_is_rejected_and_recorded_beside_others(drop, template):
    drop.mkdir()
    odd = os.fsdecode(bytes(drop) + b"/take\xff1")
    sequence(template, Path(odd), READY="")
    sequence(template, drop / "no-text", None, READY="")
    session = run_once()
    assert sorted(e["folder"] for e in session.kinds("rejected")) == ["no-text", "take\ufffd1"]
    assert not session.kinds("error")
    states = {r["name"]: r["state"] for r in ledger_state()[2].values()}
    assert states == {"no-text": "rejected", "take\ufffd1": "rejected"}
    assert "undecodable bytes" in (drop / "rejected" / "take\ufffd1" / "REJECTED.txt").read_text()


def test_a_folder_dropped_again_and_again_is_a_duplicate_every_time(drop, template, project):
    drop.mkdir()
    sequence(template, project / "stage" / "shot", "the one and only")
    for _ in range(3):
        shutil.copytree(project / "stage" / "shot", drop / "shot")
        run_once()
    assert len(runs()) == 1
    _, _, ingests = ledger_state()
    assert sorted(r["state"] for r in ingests.values()) == ["ingested", "rejected", "rejected"]
    assert sorted(p.name for p in (drop / "rejected").iterdir()) == ["shot", "shot.2"]


def test_a_link_added_to_a_folder_ingested_in_place_keeps_its_ingest(project, template):
    configure(project, watch={**FAST, "after": "mark"})
    drop = project / "drop"
    drop.mkdir()
    sequence(template, drop / "kept")
    run_once()
    os.symlink("/etc/hostname", drop / "kept" / "notes.txt")  # now it is refused, and moved to rejected/
    assert [e["folder"] for e in run_once().kinds("rejected")] == ["kept"]
    (drop / "rejected" / "kept" / "notes.txt").unlink()
    (drop / "rejected" / "kept" / "REJECTED.txt").unlink()
    os.rename(drop / "rejected" / "kept", drop / "kept")  # the same content back where it was ingested
    again = run_once()
    assert not again.kinds("queued") and len(runs()) == 1
