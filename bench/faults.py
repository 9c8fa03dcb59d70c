"""The fault matrix: every fault cosmoskit promises to survive, injected for real into a small queue of
runs, then recovered the way a user would; one table of what each fault broke.

THE MODEL IS THE CPU EMULATOR (`model.runtime: emulator`, remote/emulator/): its videos are labelled
"COSMOS EMULATOR" and are not model outputs. Everything else is real: real cosmoskit processes and
real signals (SIGKILL, SIGINT, SIGTERM), the real loopback OpenSSH server of tests/services/sshd.py,
the real single-node Slurm of tests/services/slurm.py, a real tmpfs filled to the last byte, real
ffmpeg. Faults are injected when a condition is seen (a batch in a state, a line's video written),
never after a fixed sleep.

Each fault gets a fresh project and a few runs, each on a prompt of its own text (which the emulator
writes into each line's emulator.json and prompt.txt), in seed groups (one batch per group, so several
runs share a model load and a kill lands between lines). Then:

  runs         runs acknowledged to the user (ids printed, or in the ledger when the fault struck)
  lost         acknowledged runs missing from the ledger
  run twice    runs whose line produced a video in more than one batch folder
  mislabelled  completed runs whose run folder (output.mp4, run.json, prompt.txt, spec) is not the
               video and record of their own line (prompt text, seed, weights in emulator.json)
  stuck        runs still queued/staging/running/fetching after recovery
  other        the fault's own promise not held (an exit code, a rejection, a command executed …),
               and completed runs whose video does not decode (cosmoskit._core.media.check_video)
  time to recover  seconds from the fault to the last run settled

Figures only, nothing asserted. Needs root for the tmpfs and Slurm, and sshd; rows that cannot run
say why. `python bench/faults.py [--only NAME ...] [--keep]`
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from faultlib import Missed, Project, Row, Scene, audit, log_has, make_scene, print_table, produced, row_from, wait_for
from services import slurm as slurm_mod
from services import sshd as sshd_mod

TAG = f"{os.getpid()}"


def texts(name: str, n: int, extra: str = "") -> list[str]:
    """One prompt text per run: the text is what tells its output apart from the others'."""
    return [f"fault bench {name} run {k} ({TAG}){extra}" for k in range(n)]


def queue_groups(p: Project, scene: Scene, name: str, groups: int = 2, per_group: int = 2) -> list[list[str]]:
    """``groups`` × ``per_group`` queued runs: a seed and a weight per group (one batch each)."""
    prompt_ids = p.add_prompts(scene, texts(name, groups * per_group))
    return [p.queue(prompt_ids[g * per_group:(g + 1) * per_group], weights=f"vis={0.5 + 0.1 * g:.1f}", seed=100 + g)
            for g in range(groups)]


def batch_where(p: Project, test: Callable[[dict], bool]) -> dict | None:
    return next((b for b in p.active_batches() if test(b)), None)


def running_mid_line(p: Project) -> dict | None:
    """A running batch of several lines whose first line is done and whose next has not finished."""
    for b in p.active_batches():
        folder = Path((b.get("handle") or {}).get("batch_dir") or "-")
        lines = len(b["runs"])
        if b["state"] == "running" and lines > 1 and produced(folder, 0, lines) and not produced(folder, 1, lines):
            return b
    return None


def until_settled(p: Project, timeout: float = 300) -> None:
    """Wait until every acknowledged run has finished (the live processes settle them)."""
    def settled() -> bool:
        runs = p.ledger_state()[0]
        return all(r in runs and runs[r]["status"] not in ("queued", "staging", "running", "fetching")
                   for r in p.acknowledged)
    wait_for("every run settled", settled, timeout=timeout, interval=0.3)


def worker_once(p: Project, why: str) -> int:
    """The user's recovery: `cosmoskit worker --once` until nothing more can be done."""
    done = p.cli("worker", "--once", "--strategy", "strict")
    p.note(f"recovery: `worker --once` ({why}) exit {done.returncode}")
    if "internal error" in done.stderr or "Traceback" in done.stderr:
        p.promise(False, f"`worker --once` printed an internal error: {done.stderr.strip()[-300:]}")
    return done.returncode


def queued_left(p: Project) -> int:
    runs = p.ledger_state()[0]
    return sum(1 for r in p.acknowledged if r in runs and runs[r]["status"] == "queued")


# ============================================================================ clients killed
def client_killed(p: Project, scene: Scene, padded: Scene, phase: str) -> None:
    """A foreground `transfer` of three prompts (one batch of three lines) SIGKILLed in one phase;
    the user runs `cosmoskit attach`, then `worker --once` for whatever went back to the queue."""
    p.configure()
    prompt_ids = p.add_prompts(padded if phase == "staging" else scene, texts(f"client-{phase}", 3))
    client = p.spawn("transfer", *prompt_ids, "--weights", "vis=0.6", "--seed", "7", "--json")
    conditions = {
        # mid-copy: the input is half in the store (a .part file), so the next staging must clean it up
        "staging": lambda: batch_where(p, lambda b: b["state"] == "staging") if any(p.home.glob("store/*/*.part"))
        else None,
        "running": lambda: running_mid_line(p),
        "fetching": lambda: batch_where(p, lambda b: b["state"] == "fetching"),
    }
    # fast polls: staging (a 48 MB input copied and hashed) and fetching last a fraction of a second
    batch = wait_for(f"batch {phase}", conditions[phase], proc=client, interval=0.005)
    client.send_signal(signal.SIGKILL)
    p.fault()
    client.wait()
    runs, batches, _ = p.ledger_state()
    p.acknowledge(set(runs))  # the client printed nothing: what it had recorded is what was acknowledged
    landed = next(b["state"] for b in batches if b["id"] == batch["id"])
    p.note(f"client SIGKILLed with its batch {landed} ({len(batch['runs'])} lines)"
           + (" while it copied the 48 MB input into the store" if phase == "staging" else ""))
    p.promise(landed == phase, f"the kill was meant to land in {phase}, it landed in {landed}")
    attach = p.cli("attach")
    p.note(f"recovery: `attach` exit {attach.returncode}")
    if queued_left(p):
        worker_once(p, f"{queued_left(p)} run(s) back in the queue")
    parts = list(p.home.rglob("*.part"))
    p.promise(not parts, f"half-copied files left behind: {parts}")


# ============================================================================ workers killed
def worker_killed(p: Project, scene: Scene) -> None:
    """The only worker SIGKILLed mid-batch (a line done, the next not); the user starts `worker --once`."""
    p.configure()
    queue_groups(p, scene, "worker-killed")
    worker = p.spawn("worker", "--once", "--strategy", "strict")
    batch = wait_for("a batch between two lines", lambda: running_mid_line(p), proc=worker)
    worker.send_signal(signal.SIGKILL)
    p.fault()
    worker.wait()
    p.note(f"worker SIGKILLed with batch {batch['id']} between lines 0 and 1")
    code = worker_once(p, "reattach")
    p.promise(code == 0, f"the second worker exited {code}, not 0")


def worker_killed_fetching(p: Project, scene: Scene) -> None:
    """The only worker SIGKILLed while it fetches and settles a batch (the model is done); `worker --once`
    must finish that batch from what is on disk, relaunching nothing."""
    p.configure()
    queue_groups(p, scene, "worker-fetching")
    worker = p.spawn("worker", "--once", "--strategy", "strict")
    batch = wait_for("a batch fetching", lambda: batch_where(p, lambda b: b["state"] == "fetching"), proc=worker,
                     interval=0.005)
    worker.send_signal(signal.SIGKILL)
    p.fault()
    worker.wait()
    landed = next(b["state"] for b in p.ledger_state()[1] if b["id"] == batch["id"])
    p.note(f"worker SIGKILLed with batch {batch['id']} {landed}")
    p.promise(landed == "fetching", f"the kill was meant to land in fetching, it landed in {landed}")
    code = worker_once(p, "reattach")
    p.promise(code == 0, f"the second worker exited {code}, not 0")


def worker_killed_beside_another(p: Project, scene: Scene) -> None:
    """Two workers; one SIGKILLed mid-batch (and left unreaped). No user action: the live one must adopt
    the dead one's batch."""
    # two places on this machine, one GPU each (a GPU is leased to one batch): A serves the first, B both
    p.configure(emulator={"seconds_per_chunk": 1.5}, default_executor="gpu-a",
                executors={"gpu-a": {"type": "local", "gpus": "0"}, "gpu-b": {"type": "local", "gpus": "1"}})
    queue_groups(p, scene, "worker-adopt", groups=3)
    a = p.spawn("worker", "--strategy", "strict", "--host", "gpu-a")
    mine = wait_for("A runs a batch", lambda: batch_where(p, lambda b: b["state"] == "running"
                                                         and b["owner"]["pid"] == a.pid), proc=a)
    b = p.spawn("worker", "--strategy", "strict")
    # B is past its start-up reattach once it runs a batch of its own: A then dies under a live B
    wait_for("B runs a batch", lambda: batch_where(p, lambda x: x["owner"]["pid"] == b.pid), proc=b)
    still = batch_where(p, lambda x: x["id"] == mine["id"] and x["state"] == "running")
    os.kill(a.pid, signal.SIGKILL)  # not reaped until the end: a zombie must count as dead
    p.fault()
    p.note(f"worker A SIGKILLed while its batch {mine['id']} was "
           f"{'running' if still else 'already past running'}; B left to adopt it")
    p.promise(still is not None, "A's batch had already ended when A was killed (nothing to adopt)")
    try:
        until_settled(p, timeout=240)
    finally:
        b.send_signal(signal.SIGTERM)
        b.wait(timeout=120)
        a.wait()
    _, err = p.output(b)
    adopted = f"batch {mine['id']}" in err and "its process died" in err
    p.promise(adopted, f"B never said it adopted {mine['id']}")


# ============================================================================ SSH host
def sshd_restarted(p: Project, scene: Scene, root: Path) -> None:  # root: the host's side
    """The SSH host's sshd (listener and every session) killed while a batch generates there, restarted once
    the model has finished that batch without it; the worker must ride it out and fetch everything."""
    server = sshd_mod.make(root / "sshd").start()
    p.cleanups.append(server.stop)
    known = root / "known_hosts"
    known.write_text(server.known_hosts_line())
    remote = root / "remote"
    p.batch_roots.append(remote / "batches")
    p.configure(default_executor="gpu1", executors={"gpu1": {
        "type": "ssh", "host": "127.0.0.1", "port": server.port, "user": server.user, "key_file": str(server.user_key),
        "known_hosts": str(known), "remote_dir": str(remote), "python": sys.executable}},
        emulator={"seconds_per_chunk": 1.5})
    queue_groups(p, scene, "sshd")
    worker = p.spawn("worker", "--once", "--strategy", "strict")
    batch = wait_for("a batch generating on the host", lambda: batch_where(
        p, lambda b: b["state"] == "running" and log_has(Path(b["handle"]["batch_dir"]), "chunk 1/")), proc=worker)
    sessions = kill_sshd(server)
    p.fault()
    p.note(f"sshd's listener and its {len(sessions)} session process(es) killed")
    folder = Path(batch["handle"]["batch_dir"])
    # the model goes on without sshd (its launcher is detached): restart once it has finished the whole batch,
    # so everything after the generation (noticing the end, fetching) needs the new sshd
    wait_for("the batch finished while sshd is down", lambda: (folder / "exit_code").exists(), timeout=120)
    outage = time.time() - (p.fault_wall or 0)
    log = root / "sshd" / "sshd.log"
    before = log.stat().st_size
    server.start()
    p.note(f"sshd killed with batch {batch['id']} generating; restarted {outage:.1f} s later, once the model had "
           "finished the batch without it")
    code = worker.wait(timeout=300)
    logins = log.read_bytes()[before:].count(b"Accepted publickey")
    p.note(f"the worker that saw the outage exited {code}; {logins} SSH login(s) to the restarted sshd")
    p.promise(logins > 0, "nothing logged in to the restarted sshd")
    p.promise(code == 0, f"the worker that rode the outage exited {code}, not 0")
    if queued_left(p):
        worker_once(p, "runs left queued")


def kill_sshd(server: sshd_mod.Sshd) -> list[int]:
    """Kill sshd for real: its listener and every session process it forked (Sshd.stop)."""
    assert server.process is not None
    sessions = sshd_mod.children_of(server.process.pid)
    server.stop()
    return sessions


# ============================================================================ Slurm
def slurm_config(p: Project, cluster: slurm_mod.Slurm, shared: Path, **emulator: float) -> None:
    p.batch_roots.append(shared / "batches")
    p.configure(default_executor="cluster", emulator=emulator, executors={"cluster": {
        "type": "slurm", "remote_dir": str(shared), "python": sys.executable, "gpus_per_job": 1, "partition": "debug",
        "time_limit": "00:10:00", "slurm_env": dict(cluster.env), "concurrency": 1}})


def squeue(cluster: slurm_mod.Slurm, job_id: str) -> str | None:
    """The job's state, "" once it left the queue, None when squeue itself failed (a busy controller)."""
    done = cluster.run("squeue", "-h", "-j", str(job_id), "-o", "%T", check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def slurm_scancel(p: Project, scene: Scene, cluster: slurm_mod.Slurm, root: Path) -> None:
    """Someone else's `scancel` of a running batch: its unfinished runs end `cancelled`, never
    `failed (timeout)`; the worker goes on with the rest of the queue."""
    slurm_config(p, cluster, root / "shared", seconds_per_chunk=1.5)
    queue_groups(p, scene, "scancel")
    worker = p.spawn("worker", "--once", "--strategy", "strict")
    batch = wait_for("a batch between two lines", lambda: running_mid_line(p), proc=worker)
    job = batch["handle"]["job_id"]
    cluster.run("scancel", str(job))
    p.fault()
    p.note(f"scancel {job} (batch {batch['id']}) after line 0")
    code = worker.wait(timeout=300)
    p.note(f"worker exit {code} (3: some runs did not complete)")
    runs = p.ledger_state()[0]
    for rid in batch["runs"]:
        run = runs[rid]
        p.promise(run["status"] in ("completed", "cancelled"),
                  f"{rid} of the scancelled batch ended {run['status']} ({run.get('reason')}: {run.get('error')})")
    cancelled = [r for r in batch["runs"] if runs[r]["status"] == "cancelled"]
    p.note(f"scancelled batch: {len(batch['runs']) - len(cancelled)} line(s) completed, {len(cancelled)} cancelled")


def slurm_node_failure(p: Project, scene: Scene, cluster: slurm_mod.Slurm, root: Path) -> None:
    """The node set DOWN under a running job (as tests/test_slurm.py does), resumed once Slurm ended
    the job; the live worker requeues the unfinished runs and runs them again, the finished lines never."""
    slurm_config(p, cluster, root / "shared", seconds_per_chunk=1.5)
    queue_groups(p, scene, "node-failure")
    worker = p.spawn("worker", "--once", "--strategy", "strict")
    batch = wait_for("a batch between two lines", lambda: running_mid_line(p), proc=worker)
    job = batch["handle"]["job_id"]
    node = socket.gethostname()

    def resume() -> None:
        cluster.run("scontrol", "update", f"nodename={node}", "state=resume", check=False)

    p.cleanups.append(resume)  # whatever happens, the node comes back for the next row
    cluster.run("scontrol", "update", f"nodename={node}", "state=down", "reason=cosmoskit-faults")
    p.fault()
    wait_for("Slurm ended the job", lambda: squeue(cluster, job) == "", timeout=120, interval=0.3)
    resume()
    p.note(f"node DOWN under job {job} (batch {batch['id']}) after line 0; resumed once the job had left the queue")
    code = worker.wait(timeout=300)
    p.note(f"the worker exited {code}")
    if queued_left(p):
        worker_once(p, "runs left queued")


# ============================================================================ the ledger
def ledger_damaged(p: Project, scene: Scene, name: str, damage: Callable[[Path], None], how: str) -> None:
    """A ledger file damaged while a worker runs a batch; the user stops the worker once it reports the
    file, runs `cosmoskit ledger restore NAME`, then `worker --once`: the queue runs on, nothing stranded."""
    p.configure()
    queue_groups(p, scene, f"ledger-{name}")
    worker = p.spawn("worker", "--strategy", "strict")
    wait_for("a batch between two lines", lambda: running_mid_line(p), proc=worker)
    damage(p.home / "ledger" / name)
    p.fault()
    p.note(f"{how} while a batch ran")

    def reported() -> bool:
        return name in p.output(worker)[1]
    try:
        wait_for(f"the worker reports {name}", reported, proc=worker, timeout=120, interval=0.2)
    except Missed as exc:
        p.note(f"the worker never named {name} ({exc})")
    code = stop_after_error(worker)
    err = p.output(worker)[1]
    said = next((line for line in err.splitlines() if name in line), "")
    p.note(f"the worker (exit {code}) said: {said[9:170]}…")
    p.promise("internal error" not in err and "Traceback" not in err,
              f"the worker printed an internal error: {err.strip()[-300:]}")
    restore = p.cli("ledger", "restore", name, "--json")
    p.promise(restore.returncode == 0, f"`ledger restore {name}` exited {restore.returncode}: {restore.stderr.strip()}")
    if restore.returncode == 0:
        done = json.loads(restore.stdout)
        p.note(f"recovery: `ledger restore {name}`: " + ("rebuilt" if done["rebuilt"] else "restored from backup")
               + f", it names {len(done['lost'])} lost record(s) {done['lost']}, {len(done['repairs'])} repair(s)")
    worker_once(p, "run the rest of the queue")


def ledger_damaged_staging(p: Project, scene: Scene, padded: Scene) -> None:
    """active.json truncated while a worker stages a batch (its record and handle written, its launcher not yet
    started); the worker starts the model, then cannot record it. The user stops the worker, runs
    `ledger restore active.json` (the backup predates the handle) and `worker --once`."""
    p.configure()
    prompt_ids = p.add_prompts(padded, texts("ledger-staging", 2))
    p.queue(prompt_ids, weights="vis=0.5", seed=100)
    worker = p.spawn("worker", "--strategy", "strict")
    batch = wait_for("a batch staging with its handle recorded", lambda: batch_where(
        p, lambda b: b["state"] == "staging" and (b.get("handle") or {}).get("batch_dir")), proc=worker,
        interval=0.005)
    truncate(p.home / "ledger" / "active.json")
    p.fault()
    p.note(f"active.json truncated to half while batch {batch['id']} staged its input")
    wait_for("the worker reports active.json", lambda: "active.json" in p.output(worker)[1], proc=worker,
             timeout=120, interval=0.2)
    code = stop_after_error(worker)
    folder = Path(batch["handle"]["batch_dir"])
    started = (folder / "launcher.pid").exists()
    p.note(f"the worker (exit {code}) named active.json; the batch's launcher "
           f"{'had started' if started else 'had not started'}")
    restore = p.cli("ledger", "restore", "active.json", "--json")
    p.promise(restore.returncode == 0, f"`ledger restore active.json` exited {restore.returncode}")
    if restore.returncode == 0:
        done = json.loads(restore.stdout)
        p.note(f"recovery: `ledger restore active.json`: names {len(done['lost'])} lost record(s), "
               f"{len(done['repairs'])} repair(s): {[r.get('detail') for r in done['repairs']][:3]}")
    worker_once(p, "run the queue on")


def stop_after_error(worker: subprocess.Popen[str]) -> int | str:
    """What a user does once the worker has named the damaged file: let it stop if it is stopping, else
    Ctrl-C (a SIGINT sent into a worker already on its way out would only blur its own exit code)."""
    try:
        return worker.wait(timeout=10)
    except subprocess.TimeoutExpired:
        worker.send_signal(signal.SIGINT)
        return f"{worker.wait(timeout=120)} after Ctrl-C"


def garbage(path: Path) -> None:
    path.write_text("garbage\n")


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


LOCK_QUEUERS = 12


def lock_vandal(p: Project, scene: Scene) -> None:
    """`ledger/.lock` deleted and replaced in a loop while two workers run and twelve `transfer --queue`
    commands (three at a time) add runs: the flock is on the ledger folder, so nothing may interleave."""
    p.configure(emulator={"seconds_per_chunk": 0.3})
    prompt_ids = p.add_prompts(scene, texts("lock", LOCK_QUEUERS))
    workers = [p.spawn("worker", "--strategy", "single") for _ in range(2)]
    stop = threading.Event()
    count = [0]

    def vandal() -> None:
        lock = p.home / "ledger" / ".lock"
        while not stop.is_set():
            try:
                lock.unlink()
            except FileNotFoundError:
                pass
            lock.write_text("")  # and replaced by a new, unlocked file
            count[0] += 1
            time.sleep(0.002)  # hundreds a second, and the shared cores left to the processes under test

    thread = threading.Thread(target=vandal, daemon=True)
    thread.start()
    p.fault()
    try:
        for first in range(0, LOCK_QUEUERS, 3):  # three at a time
            procs = [p.spawn("transfer", pid, "--weights", "vis=0.5", "--seed", str(200 + first + j), "--queue",
                             "--json") for j, pid in enumerate(prompt_ids[first:first + 3])]
            for proc in procs:
                code = proc.wait(timeout=300)
                out, err = p.output(proc)
                p.promise(code == 0, f"a `transfer --queue` exited {code}: {err.strip()[-200:]}")
                if code == 0:
                    p.acknowledge([r["id"] for r in json.loads(out)])
        until_settled(p, timeout=300)
    finally:
        stop.set()
        thread.join()
        for w in workers:
            w.send_signal(signal.SIGTERM)
            w.wait(timeout=120)
    p.note(f"lock file deleted and replaced {count[0]} times; two workers, {LOCK_QUEUERS} `transfer --queue`")
    p.promise(count[0] > 10, "the lock file was hardly touched")


# ============================================================================ disk full
def disk_full(p: Project, scene: Scene) -> None:
    """The project home on a 3 MB tmpfs, filled while the model writes its video; the user frees the disk
    and runs `worker --once`: never a completed run without a video that decodes."""
    mount = p.home / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if made.returncode != 0:
        raise Skip(f"mount -t tmpfs failed ({made.stderr.strip()})")
    p.cleanups.append(lambda: subprocess.run(["umount", "-l", str(mount)], capture_output=True))
    p.home = mount  # the project lives on the small disk from here on
    p.batch_roots = [mount / "batches"]
    p.configure(emulator={"seconds_per_chunk": 2.0})
    queue_groups(p, scene, "disk-full")
    worker = p.spawn("worker", "--once", "--strategy", "strict")
    wait_for("the model generating", lambda: any(log_has(f.parent, "chunk 1/1")
                                                 for f in (mount / "batches").glob("*/batch.log")), proc=worker)
    filler = fill(mount, leave=12 * 1024)
    p.fault()
    code = worker.wait(timeout=300)
    err = p.output(worker)[1]
    last = err.strip().splitlines()[-1] if err.strip() else ""
    p.note(f"disk filled while the model wrote; the worker exited {code}: {last[:160]}")
    p.promise("internal error" not in err and "Traceback" not in err, f"internal error on a full disk: {last}")
    p.promise(code in (1, 3) and last.startswith("Error: "), f"a full disk ended the worker with exit {code}")
    filler.unlink()
    worker_once(p, "after freeing the disk")


def fill(folder: Path, leave: int = 0) -> Path:
    """Eat the free bytes of the filesystem holding ``folder``, all but ``leave``."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


# ============================================================================ input and configuration
POISON = {
    "huge-seed": 'prompt: poison seed\nseed: 99999999999999999999999\nweights: "vis=1"\n',
    "huge-priority": 'prompt: poison priority\npriority: 99999999999999999999999\nweights: "vis=1"\n',
    "surrogate-prompt": 'prompt: "poison \\udcff prompt"\nweights: "vis=1"\n',
    "surrogate-name": 'prompt: poison name\nname: "bad\\udcff"\nweights: "vis=1"\n',
}


def poison_drop(p: Project, scene: Scene) -> None:
    """Four poison folders dropped beside a valid one; `watch --once --work`: the valid one queued and run,
    each bad one in rejected/ with its reason, no ingest record left `claimed`."""
    p.configure(watch={"settle_seconds": 0.5, "rescan_seconds": 1.0})
    drop = p.home / "drop"
    folders = {"valid": f'prompt: "{texts("drop", 1)[0]}"\nweights: "vis=1"\nseed: 5\n', **POISON}
    for name, sidecar in folders.items():
        shutil.copytree(scene.folder, drop / name)
        (drop / name / "cosmos.yaml").write_text(sidecar)
        (drop / name / "READY").write_text("")
    p.fault()
    done = p.cli("watch", "--once", "--work", "--json")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    queued = [e for e in events if e.get("event") == "queued"]
    for e in queued:
        p.acknowledge(e.get("runs") or [])
    if not p.acknowledged:  # the event names no ids: take the ledger's word for what was queued
        p.acknowledge(set(p.ledger_state()[0]))
    names = [e.get("folder") for e in queued]
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    p.note(f"`watch --once --work` exit {done.returncode} (3: some folders rejected): {last[:120]}")
    p.note(f"queued: {names}")
    p.promise(names == ["valid"], f"queued {names}, not the valid one alone")
    for name in POISON:
        report = drop / "rejected" / name / "REJECTED.txt"
        # REJECTED.txt: a header line, then one line per problem
        lines = report.read_text(errors="replace").strip().splitlines() if report.is_file() else []
        reason = lines[1] if len(lines) > 1 else ""
        p.promise(bool(reason), f"{name} is not in rejected/ with a reason")
        if reason:
            p.note(f"{name}: rejected ({reason[:90]})")
    from cosmoskit._core.ledger import Ledger

    with Ledger(p.home).read() as tx:
        states = [r.get("state") for r in tx.plugin_table("dropfolder_ingest").all().values()]
    p.promise("claimed" not in states, f"ingest records left claimed: {states}")
    p.promise("internal error" not in done.stderr and "Traceback" not in done.stderr,
              f"watch printed an internal error: {done.stderr.strip()[-300:]}")


def env_injection(p: Project, scene: Scene) -> None:
    """`model.env: {"BAD NAME;touch MARKER": 1}` with runs in the queue: refused by `config check` and by the
    worker, nothing executed, nothing written for a shell; the user fixes the key and the queue runs."""
    p.configure()
    queue_groups(p, scene, "env", groups=1)
    marker = p.logs / "pwned"
    p.configure(model={"runtime": "emulator", "env": {f"BAD NAME;touch {marker}": 1}})
    p.fault()
    check = p.cli("config", "check")
    worker = p.cli("worker", "--once")
    for what, done in (("config check", check), ("worker --once", worker)):
        p.promise(done.returncode == 1 and "is not an environment variable name" in done.stderr,
                  f"`{what}` with the bad key exited {done.returncode}: {done.stderr.strip()[-200:]}")
    p.promise(not marker.exists(), "the injected `touch` ran")
    written = list(p.home.glob("batches/*/launch.env"))
    p.promise(not written, f"launch.env written for a shell: {written}")
    p.note(f"`config check` exit {check.returncode}, `worker --once` exit {worker.returncode}: "
           f"{worker.stderr.strip().splitlines()[-1][:120] if worker.stderr.strip() else ''}")
    runs = p.ledger_state()[0]
    p.promise(all(runs[r]["status"] == "queued" for r in p.acknowledged), "the refused runs left the queue")
    p.configure()  # the user removes the key
    worker_once(p, "after fixing model.env")


def all_fail_exit_code(p: Project, scene: Scene) -> None:
    """A foreground `transfer` whose runs all fail (the emulator's guardrail blocks both prompts): exit 3."""
    p.configure()
    prompt_ids = p.add_prompts(scene, texts("blocked", 2, " EMULATOR_GUARDRAIL_BLOCK"))
    p.fault()
    done = p.cli("transfer", *prompt_ids, "--weights", "vis=0.5", "--seed", "3", "--json")
    p.acknowledge([r["id"] for r in json.loads(done.stdout)] if done.stdout.strip() else set(p.ledger_state()[0]))
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    p.note(f"exit {done.returncode}: {last[:140]}")
    p.promise(done.returncode == 3, f"exit {done.returncode}, not 3")


def ctrl_c(p: Project, scene: Scene) -> None:
    """SIGINT to a foreground `transfer` mid-batch: exit 130 with a line saying where the runs went; once
    the model has exited on its own, `cosmoskit status` settles the batch (no `attach`)."""
    p.configure(emulator={"seconds_per_chunk": 1.5})
    prompt_ids = p.add_prompts(scene, texts("ctrl-c", 2))
    client = p.spawn("transfer", *prompt_ids, "--weights", "vis=0.5", "--seed", "4")
    batch = wait_for("a batch between two lines", lambda: running_mid_line(p), proc=client)
    client.send_signal(signal.SIGINT)
    p.fault()
    code = client.wait(timeout=120)
    p.acknowledge(batch["runs"])
    err = p.output(client)[1].strip()
    last = err.splitlines()[-1] if err else ""
    p.note(f"exit {code}: {last[:150]}")
    p.promise(code == 130, f"Ctrl-C exited {code}, not 130")
    p.promise(last.startswith(f"Error: Interrupted: batch {batch['id']}") and "cosmoskit attach" in last,
              "the last line does not say where the batch went")
    p.promise("Traceback" not in err, "a traceback on Ctrl-C")
    folder = Path(batch["handle"]["batch_dir"])
    wait_for("the model exited by itself", lambda: (folder / "exit_code").exists(), timeout=120)
    status = p.cli("status", "--json")
    p.note(f"recovery: `status` exit {status.returncode} once the model had exited")
    p.promise(status.returncode == 0, f"`status` exited {status.returncode}")


# ============================================================================ running the matrix
class Skip(Exception):
    """The fault needs something this machine does not have (root, a service)."""


def scenario(fault: str, fn: Callable[..., None], root: Path, name: str, *args: object) -> Row:
    """One fault in a fresh project: inject, recover, clean up, audit."""
    p = Project.fresh(root, name)
    started = time.monotonic()
    try:
        fn(p, *args)
    except Skip as exc:
        p.stop_children()
        p.undo()
        return Row(fault, skipped=str(exc))
    except Exception as exc:
        p.promise(False, f"the scenario stopped: {exc or exc!r}")
        if not isinstance(exc, Missed):
            p.note(traceback.format_exc(limit=3).strip().replace("\n", " | "))
    finally:
        p.stop_children()
    try:
        row = row_from(fault, p, audit(p))
    except Exception as exc:
        row = Row(fault, other=1, notes=[*p.notes, f"the audit failed: {exc!r}"])
    finally:
        p.undo()  # after the audit: a tmpfs is unmounted, sshd stopped, a node resumed
    row.notes.append(f"scenario wall time {time.monotonic() - started:.0f} s")
    print(f"  {'ok ' if row.clean else 'NOT'} {fault} ({time.monotonic() - started:.0f} s)", flush=True)
    return row


@dataclass
class Fault:
    """One row of the matrix: its title, its scenario and what that needs beyond this script."""

    title: str
    fn: Callable[..., None]
    args: tuple[object, ...] = ()
    service: str = ""  # "sshd", "slurm" or "root"


def matrix(scene: Scene, padded: Scene) -> list[Fault]:
    return [
        Fault("client killed at staging", client_killed, (scene, padded, "staging")),
        Fault("client killed at running", client_killed, (scene, padded, "running")),
        Fault("client killed at fetching", client_killed, (scene, padded, "fetching")),
        Fault("worker killed", worker_killed, (scene,)),
        Fault("worker killed at fetching", worker_killed_fetching, (scene,)),
        Fault("worker killed beside a live one", worker_killed_beside_another, (scene,)),
        Fault("sshd killed and restarted", sshd_restarted, (scene,), "sshd"),
        Fault("slurm scancel", slurm_scancel, (scene,), "slurm"),
        Fault("slurm node failure", slurm_node_failure, (scene,), "slurm"),
        Fault("ledger index.json garbage, restored", ledger_damaged,
              (scene, "index.json", garbage, "`echo garbage > ledger/index.json`")),
        Fault("ledger active.json truncated, restored", ledger_damaged,
              (scene, "active.json", truncate, "active.json truncated to half")),
        Fault("ledger active.json truncated at staging, restored", ledger_damaged_staging, (scene, padded)),
        Fault("ledger .lock deleted in a loop", lock_vandal, (scene,)),
        Fault("disk full mid-batch", disk_full, (scene,), "root"),
        Fault("poison drop folders", poison_drop, (scene,)),
        Fault("model.env shell injection", env_injection, (scene,)),
        Fault("transfer whose runs all fail", all_fail_exit_code, (scene,)),
        Fault("Ctrl-C of a foreground transfer", ctrl_c, (scene,)),
    ]


class Services:
    """sshd is started by its scenario; Slurm once, for both of its rows, and stopped at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cluster: slurm_mod.Slurm | None = None

    def missing(self, service: str) -> str:
        if service == "sshd" and not sshd_mod.available():
            return "needs OpenSSH sshd (apt-get install openssh-server)"
        if service == "slurm" and not slurm_mod.available():
            return "needs slurm-wlm and munge, as root"
        if service == "root" and os.geteuid() != 0:
            return "needs root to mount a small tmpfs"
        return ""

    def extra(self, fault: Fault, folder: Path) -> tuple[object, ...]:
        if fault.service == "sshd":
            return (folder,)
        if fault.service == "slurm":
            if self.cluster is None:
                self.cluster = slurm_mod.start(self.root / "slurm")
            return (self.cluster, folder)
        return ()

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.run("scancel", "--user", "root", check=False)
            self.cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--only", nargs="*", help="run only the faults whose title contains one of these words")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (projects, logs)")
    parser.add_argument("--repeat", type=int, default=1, help="run the matrix this many times (timing-sensitive "
                        "faults land at a slightly different instant each time)")
    args = parser.parse_args()
    start = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="cosmoskit-faults-"))
    print("cosmoskit fault matrix. THE MODEL IS THE CPU EMULATOR: its videos are labelled stand-ins, not model "
          "outputs. Real processes and signals, loopback sshd, single-node Slurm, tmpfs, ffmpeg.")
    print(f"work folder {root}", flush=True)
    scene = make_scene(root / "scene")
    padded = make_scene(root / "scene-48mb", pad_mb=48)
    services = Services(root)
    rows = []
    try:
        for number, fault in [(n, f) for _ in range(args.repeat) for n, f in enumerate(matrix(scene, padded), 1)]:
            if args.only and not any(word in fault.title for word in args.only):
                continue
            name = f"{number:02d}-{fault.fn.__name__}"
            while (root / name).exists():  # a repeat
                name += "+"
            missing = services.missing(fault.service)
            if missing:
                rows.append(Row(fault.title, skipped=missing))
                continue
            try:
                extra = services.extra(fault, root / name / "outside")
            except Exception as exc:
                rows.append(Row(fault.title, skipped=f"{fault.service} did not start: {exc}"))
                continue
            rows.append(scenario(fault.title, fault.fn, root, name, *fault.args, *extra))
    finally:
        services.stop()
    wall = time.monotonic() - start
    print()
    print_table(rows, wall)
    print("\nnotes (what each fault did, how it was recovered, and anything that did not hold):")
    for row in rows:
        print(f"- {row.fault}" + (f": skipped ({row.skipped})" if row.skipped else ""))
        for note in row.notes:
            print(f"    {note}")
    if args.keep:
        print(f"\nkept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
