"""Shell lines run on the host.  Every path or value is quoted with shlex; no prompt text ever appears."""
from __future__ import annotations

import shlex

q = shlex.quote


def poll(batch_dir: str) -> str:
    """Prints ``exited CODE``, ``running PID`` or ``vanished [PID]``."""
    d = q(batch_dir)
    return (
        f"cd {d} 2>/dev/null || {{ echo vanished; exit 0; }}; "
        "if [ -f exit_code ]; then echo \"exited $(cat exit_code)\"; exit 0; fi; "
        "pid=$(cat launcher.pid 2>/dev/null); "
        "if [ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null && grep -q launch.sh /proc/\"$pid\"/cmdline 2>/dev/null; "
        "then echo \"running $pid\"; "
        "elif [ -f exit_code ]; then echo \"exited $(cat exit_code)\"; "
        "else echo \"vanished $pid\"; fi"
    )


def wait(batch_dir: str, seconds: float, pid: int | None = None) -> str:
    """Waits on the host until the batch's exit code appears or its launcher is gone (at most ``seconds``,
    looking every 50 ms there, so an exit is seen without a round trip per look); then prints as ``poll``."""
    d = q(batch_dir)
    looks = max(1, int(seconds / 0.05))
    return (
        f"cd {d} 2>/dev/null && {{ pid=$(cat launcher.pid 2>/dev/null || echo {int(pid or 0)}); "
        f"for _ in $(seq {looks}); do [ -f exit_code ] && break; kill -0 \"$pid\" 2>/dev/null || break; "
        "sleep 0.05; done; }; " + poll(batch_dir)
    )


def store_report(store: str, names: list[str]) -> str:
    """For each store entry: ``name size mtime marker`` (``-`` where missing); also the size of a partial upload."""
    script = [f"cd {q(store)}"]
    for name in names:
        n = q(name)
        script.append(
            f"s=$(stat -c '%s %.9Y' {n} 2>/dev/null || echo '- -'); "
            f"m=$(cat {q(name + '.ok')} 2>/dev/null | tr -d '\\n'); "
            f"p=$(stat -c '%s' {q(name + '.part')} 2>/dev/null || echo -); echo {n} $s \"${{m:--}}\" \"$p\""
        )
    return "; ".join(script)


def verify_and_install(store: str, name: str, sha: str) -> str:
    """Hash the uploaded part; on a match move it into place and record size+mtime as verified."""
    part, final, ok = q(f"{store}/{name}.part"), q(f"{store}/{name}"), q(f"{store}/{name}.ok")
    return (f"h=$(sha256sum {part} | cut -d' ' -f1); if [ \"$h\" = {q(sha)} ]; then mv -f {part} {final} && "
            f"stat -c '%s %.9Y' {final} > {ok} && echo ok; else rm -f {part}; echo \"bad $h\"; fi")


def install(store: str, name: str) -> str:
    """Move a verified part into place and record size+mtime as verified."""
    part, final, ok = q(f"{store}/{name}.part"), q(f"{store}/{name}"), q(f"{store}/{name}.ok")
    return f"mv -f {part} {final} && stat -c '%s %.9Y' {final} > {ok} && echo ok"


def verify_existing(store: str, name: str, sha: str) -> str:
    """Re-hash an entry whose size or time changed since it was verified; delete it if corrupt."""
    final, ok = q(f"{store}/{name}"), q(f"{store}/{name}.ok")
    return (f"h=$(sha256sum {final} | cut -d' ' -f1); if [ \"$h\" = {q(sha)} ]; then stat -c '%s %.9Y' {final} > {ok}; "
            f"echo ok; else rm -f {final} {ok}; echo \"bad $h\"; fi")


def link_inputs(store: str, batch_dir: str, pairs: list[tuple[str, str]]) -> str:
    parts = [f"mkdir -p {q(batch_dir + '/inputs')}"]
    for store_name, rel in pairs:
        parts.append(f"ln -f {q(store + '/' + store_name)} {q(batch_dir + '/' + rel)}")
    return " && ".join(parts)


def unpack(batch_dir: str) -> str:
    return f"mkdir -p {q(batch_dir)} && tar -xf - -C {q(batch_dir)}"


def pack_results(batch_dir: str) -> str:
    members = ("outputs batch.log exit_code stop_reason started_at model_started_at model_exited_at finished_at "
               "launcher.pid job.sbatch slurm-*.out")
    return (f"cd {q(batch_dir)} && tar --ignore-failed-read -cf - "
            f"$(for f in {members}; do [ -e \"$f\" ] && echo \"$f\"; done) "
            "2>/dev/null")


def cancel(batch_dir: str, reason: str, docker: str | None, container: str | None) -> str:
    d = q(batch_dir)
    line = (f"cd {d} 2>/dev/null || exit 0; [ -f exit_code ] || [ -f stop_reason ] || echo {q(reason)} > stop_reason; "
            "pid=$(cat launcher.pid 2>/dev/null); "
            "[ -n \"$pid\" ] && grep -q launch.sh /proc/\"$pid\"/cmdline 2>/dev/null && kill -TERM \"$pid\"")
    if docker and container:
        line += f"; {docker} kill {q(container)} >/dev/null 2>&1"
    return line + "; true"


def status(remote_dir: str, docker: str) -> str:
    """Sections separated by markers: GPUs, containers, disk, launchers."""
    return "; ".join([
        "echo '@@gpus'",
        "if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.used,memory.total,"
        "utilization.gpu,temperature.gpu --format=csv,noheader,nounits 2>&1; else echo 'no-nvidia-smi'; fi",
        "echo '@@containers'",
        f"{docker} ps --filter name=cosmos_ --format '{{{{.Names}}}}\\t{{{{.Image}}}}\\t{{{{.RunningFor}}}}' 2>&1 "
        "|| echo 'docker-failed'",
        "echo '@@disk'",
        f"mkdir -p {q(remote_dir)} && df -Pk {q(remote_dir)} | tail -1",
        "echo '@@launchers'",
        f"for f in {q(remote_dir)}/batches/*/launcher.pid; do [ -f \"$f\" ] || continue; d=$(dirname \"$f\"); "
        "[ -f \"$d/exit_code\" ] && continue; p=$(cat \"$f\"); kill -0 \"$p\" 2>/dev/null && echo \"$p $d\"; "
        "done; true",
    ])


def sections(text: str) -> dict[str, list[str]]:
    """Split the output of a script that prints ``@@name`` marker lines into its named sections."""
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@@"):
            current = line[2:]
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return found
