"""SSH executor figures against a loopback OpenSSH server (started here, like the tests do).

1. Upload of a 1 GB file: our staging path vs OpenSSH `scp` on the same file, as a ratio (target >= 0.8).
2. Re-staging inputs already on the host: payload bytes sent (target 0).
3. Per-batch overhead over SSH with the emulator at zero compute (target <= 1.5 s per batch).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import report

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from services import sshd as sshd_mod

SIZE_MB = int(os.environ.get("BENCH_UPLOAD_MB", "1024"))


def main() -> None:
    if not sshd_mod.available():
        raise SystemExit("needs OpenSSH sshd (apt-get install openssh-server)")
    tmp = Path(tempfile.mkdtemp(prefix="cosmoskit-bench-ssh-"))
    server = sshd_mod.make(tmp / "sshd").start()
    known = tmp / "known_hosts"
    known.write_text(server.known_hosts_line())
    os.chdir(tmp)
    (tmp / "cosmoskit.yaml").write_text(f"""\
default_executor: gpu1
model: {{runtime: emulator}}
emulator: {{variation: false}}
timeouts: {{poll_seconds: 0.1}}
executors:
  gpu1: {{type: ssh, host: 127.0.0.1, port: {server.port}, user: {server.user}, key_file: {server.user_key},
          known_hosts: {known}, remote_dir: {tmp / 'remote'}, python: {sys.executable}}}
""")
    rows = []
    try:
        from cosmoskit._core import context
        from cosmoskit._core.batchjob import BatchJob
        from cosmoskit._core.engine import Engine
        from cosmoskit._core.foreground import run_now
        from cosmoskit._core.media import make_test_video, sha256_file
        from cosmoskit._core.prompts import new_prompt

        settings, ledger = context.settings(), context.ledger()
        engine = Engine(settings, ledger)
        ex = engine.executor("gpu1")

        # 1. a 1 GB upload, ours then scp, in one run
        big = tmp / "big.bin"
        with open(big, "wb") as fh:
            for _ in range(SIZE_MB):
                fh.write(os.urandom(1 << 20))
        sha = sha256_file(big)
        job = BatchJob("bt_benchupload", None, [], {}, tmp / "job", "", {})  # type: ignore[arg-type]
        job.inputs[sha] = {"sha256": sha, "name": "inputs/big.bin", "path": str(big), "bytes": big.stat().st_size}
        job.dir.mkdir()
        start = time.perf_counter()
        figures = ex.stage(job)
        ours = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run(["scp", "-q", "-P", str(server.port), "-i", str(server.user_key),
                        "-o", f"UserKnownHostsFile={known}",
                        str(big), f"{server.user}@127.0.0.1:{tmp}/scp-copy.bin"], check=True)
        scp = time.perf_counter() - start
        mb = big.stat().st_size / 1e6
        rows.append((f"upload {SIZE_MB} MB: cosmoskit staging (verified: size + SSH integrity)",
                     f"{ours:.2f} s, {mb / ours:.0f} MB/s"))
        rows.append((f"upload {SIZE_MB} MB: OpenSSH scp", f"{scp:.2f} s, {mb / scp:.0f} MB/s"))
        rows.append(("throughput ratio cosmoskit / scp", f"{scp / ours:.2f} (target >= 0.8)"))
        rows.append(("  bytes sent", f"{figures['bytes_sent']:,}"))
        # 2. the same input again
        figures = ex.stage(job)
        rows.append(("re-staging the same input: payload bytes sent", f"{figures['bytes_sent']} (target 0)"))
        big.unlink()

        # 3. per-batch overhead at zero compute
        scene = tmp / "scene"
        make_test_video(scene / "color.mp4", width=64, height=36, frames=8, fps=24)
        with ledger.transaction() as tx:
            prompt = tx.add_prompt(new_prompt("bench", scene))
        times = []
        for _ in range(5):
            docs = engine.new_runs("transfer", [prompt["id"]], {"weights": "edge=1"})
            t = time.perf_counter()
            (run,) = run_now(engine, docs, quiet=True)
            times.append(time.perf_counter() - t)
            assert run["status"] == "completed", run
        rows.append(("per-batch overhead over SSH, zero compute (median of 5)",
                     f"{statistics.median(times):.2f} s (target <= 1.5; min {min(times):.2f})"))
        engine.close()
    finally:
        server.stop()
    report("SSH executor on loopback", rows)


if __name__ == "__main__":
    main()
