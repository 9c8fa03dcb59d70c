"""TEST DOUBLE of the docker CLI — not Docker.

No Docker engine runs where cosmoskit is tested, so this stands in for the `docker` command:
it records every command line it gets (one JSON list per line in ``$DOCKER_DOUBLE_DIR/calls.jsonl``)
and, for ``docker run … IMAGE ARGV…``, runs the Cosmos emulator with ARGV in place of the image,
keeping per-"container" state so that ``docker ps``, ``kill``, ``inspect`` and ``logs`` answer
like the real CLI does for what the tests need.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ.get("DOCKER_DOUBLE_DIR", "/tmp/docker-double"))
EMULATOR = (os.environ.get("DOCKER_DOUBLE_EMULATOR")
            or str(Path(__file__).resolve().parents[2] / "remote" / "cosmos_emulator.py"))
# flags of `docker run` that take a value (the ones cosmoskit uses, and a few more)
VALUE_FLAGS = {"--name", "--gpus", "-v", "--volume", "-w", "--workdir", "-e", "--env", "--runtime", "--ipc",
               "--network", "--shm-size", "-u", "--user", "--entrypoint", "--label", "--env-file"}


def record(argv: list[str]) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / "calls.jsonl", "a") as fh:
        fh.write(json.dumps(argv) + "\n")


def containers() -> Path:
    d = STATE / "containers"
    d.mkdir(parents=True, exist_ok=True)
    return d


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def run(args: list[str]) -> int:
    name, i = None, 0
    env = dict(os.environ)
    while i < len(args) and args[i].startswith("-"):
        flag = args[i]
        if "=" in flag and flag.split("=", 1)[0] in VALUE_FLAGS:
            key, value = flag.split("=", 1)
            i += 1
        elif flag in VALUE_FLAGS:
            key, value = flag, args[i + 1]
            i += 2
        else:
            key, value = flag, None
            i += 1
        if key == "--name":
            name = value
        if key in ("-e", "--env") and value and "=" in value:
            k, v = value.split("=", 1)
            env[k] = v
        if key == "--env-file":  # as docker reads it: KEY=VALUE lines, # comments; a missing file is an error
            try:
                lines = Path(value).read_text().splitlines()
            except OSError as exc:
                sys.stderr.write(f"docker: open {value}: {exc.strerror}.\n")
                return 125
            for line in lines:
                if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    env[k.strip()] = v
    image, argv = args[i], args[i + 1:]
    name = name or f"double_{os.getpid()}"
    state = containers() / f"{name}.json"
    if state.exists() and alive(json.loads(state.read_text())["pid"]):
        sys.stderr.write(f'docker: Error response from daemon: Conflict. The container name "/{name}" '
                         'is already in use.\n')
        return 125
    # the Cosmos command runs in the emulator; anything else (`sleep 60` …) runs as it is
    is_model = argv and (argv[0] in ("torchrun", "python", "python3") or argv[0].endswith(".py"))
    child = subprocess.Popen([sys.executable, EMULATOR, *argv] if is_model else argv, env=env, start_new_session=True)
    state.write_text(json.dumps({"name": name, "image": image, "pid": child.pid, "started": time.time(), "argv": argv}))

    def forward(signum, frame):  # docker run proxies signals to the container
        try:
            os.killpg(child.pid, signum)
        except OSError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    if "--rm" in args[:i]:
        state.unlink(missing_ok=True)
    else:
        state.write_text(json.dumps({**json.loads(state.read_text()), "exit_code": code, "pid": -1}))
    return code if code >= 0 else 128 - code


def running() -> list[dict]:
    out = []
    for f in sorted(containers().glob("*.json")):
        info = json.loads(f.read_text())
        if info["pid"] > 0 and alive(info["pid"]):
            out.append(info)
    return out


def main(argv: list[str]) -> int:
    record(argv)
    if not argv:
        return 0
    cmd, args = argv[0], argv[1:]
    if cmd == "run":
        return run(args)
    if cmd == "kill":
        code = 0
        for name in (a for a in args if not a.startswith("-")):
            f = containers() / f"{name}.json"
            if f.exists() and alive(json.loads(f.read_text())["pid"]):
                os.killpg(json.loads(f.read_text())["pid"], signal.SIGKILL)
                print(name)
            else:
                sys.stderr.write(f"Error response from daemon: Cannot kill container: {name}: "
                                 f"No such container: {name}\n")
                code = 1
        return code
    if cmd == "ps":
        fmt = args[args.index("--format") + 1] if "--format" in args else None
        if fmt:
            fmt = fmt.replace("\\t", "\t")  # the docker CLI turns a written \t into a tab
        filt = args[args.index("--filter") + 1] if "--filter" in args else ""
        for info in running():
            if filt.startswith("name=") and filt[5:] not in info["name"]:
                continue
            if fmt:
                print(fmt.replace("{{.Names}}", info["name"]).replace("{{.Image}}", info["image"])
                      .replace("{{.RunningFor}}", f"{int(time.time() - info['started'])} seconds")
                      .replace("{{.Status}}", "Up"))
            else:
                print(f"{info['pid']}\t{info['image']}\t{info['name']}")
        return 0
    if cmd == "inspect":
        name = [a for a in args if not a.startswith("-")][-1]
        f = containers() / f"{name}.json"
        if not f.exists():
            print("[]")
            sys.stderr.write(f"Error: No such object: {name}\n")
            return 1
        info = json.loads(f.read_text())
        run_ = info["pid"] > 0 and alive(info["pid"])
        print(json.dumps([{"Name": "/" + name, "State": {"Running": run_, "ExitCode": info.get("exit_code", 0)}}]))
        return 0
    if cmd == "logs":
        return 0
    if cmd == "image" and args[:1] == ["inspect"]:
        # every image exists, unless the test names one it wants missing (DOCKER_DOUBLE_MISSING_IMAGES)
        missing = set(filter(None, os.environ.get("DOCKER_DOUBLE_MISSING_IMAGES", "").split(",")))
        name = args[-1]
        if name in missing:
            print("[]")
            sys.stderr.write(f"Error response from daemon: No such image: {name}\n")
            return 1
        print(json.dumps([{"RepoTags": [name]}]))
        return 0
    if cmd in ("version", "--version"):
        print("Docker version 0.0.0-test-double (cosmoskit tests)")
        return 0
    sys.stderr.write(f"docker test double: unsupported command {cmd}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
