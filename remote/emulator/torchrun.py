"""torchrun as the emulator plays it: one process standing in for local rank 0."""

from __future__ import annotations

import os
import socket
import sys
import time

from .common import EmulatorConfigError, _out

_TORCHRUN_FLAGS = {"standalone", "no_python", "module", "m", "run_path", "local_addr_none"}


class LaunchContext:
    def __init__(self, torchrun, nproc, nnodes, node_rank, opts):
        self.torchrun = torchrun
        self.nproc = nproc
        self.nnodes = nnodes
        self.node_rank = node_rank
        self.opts = opts


def parse_launch(argv):
    """argv after the emulator's own path -> (LaunchContext, script_path, script_args)."""
    if not argv:
        raise EmulatorConfigError("usage: cosmos_emulator.py [torchrun <torchrun options>] "
                                  "<transfer.py|upsampler_pipeline.py> <args>")
    if os.path.basename(argv[0]) != "torchrun":
        nproc = 1
        try:
            nproc = int(os.environ.get("WORLD_SIZE", "1"))
        except ValueError:
            pass
        return LaunchContext(False, nproc, 1, 0, {}), argv[0], argv[1:]
    opts = {}
    i = 1
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if "=" in arg:
            k, v = arg.split("=", 1)
            opts[k.lstrip("-").replace("-", "_")] = v
            i += 1
            continue
        k = arg.lstrip("-").replace("-", "_")
        if k in _TORCHRUN_FLAGS:
            opts[k] = True
            i += 1
            continue
        if i + 1 >= len(argv):
            raise EmulatorConfigError(f"torchrun option {arg} needs a value")
        opts[k] = argv[i + 1]
        i += 2
    if i >= len(argv):
        raise EmulatorConfigError("torchrun: no training script given")

    def as_int(name, default):
        value = opts.get(name, default)
        if name == "nproc_per_node" and str(value) in ("auto", "gpu", "cpu"):
            return 1
        try:
            return int(value)
        except (TypeError, ValueError):
            if name == "nnodes" and isinstance(value, str) and ":" in value:
                return int(value.split(":")[-1])
            raise EmulatorConfigError(f"torchrun --{name} must be an integer, got {value!r}") from None

    nproc = as_int("nproc_per_node", 1)
    nnodes = as_int("nnodes", 1)
    node_rank = as_int("node_rank", 0)
    if nproc < 1:
        raise EmulatorConfigError(f"torchrun --nproc_per_node must be >= 1, got {nproc}")
    ctx = LaunchContext(True, nproc, nnodes, node_rank, opts)
    # what torchrun sets for the (emulated) local rank 0 worker
    os.environ["RANK"] = str(node_rank * nproc)
    os.environ["LOCAL_RANK"] = "0"
    os.environ["WORLD_SIZE"] = str(nnodes * nproc)
    os.environ["LOCAL_WORLD_SIZE"] = str(nproc)
    os.environ["GROUP_RANK"] = str(node_rank)
    os.environ["ROLE_RANK"] = "0"
    os.environ["ROLE_NAME"] = "default"
    os.environ["MASTER_ADDR"] = str(opts.get("master_addr", "127.0.0.1"))
    os.environ["MASTER_PORT"] = str(opts.get("master_port", "29500"))
    os.environ.setdefault("TORCHELASTIC_RUN_ID", str(opts.get("rdzv_id", "none")))
    return ctx, argv[i], argv[i + 1:]


def _torchrun_failure(script, exitcode=1):
    now = time.strftime("%Y-%m-%d_%H:%M:%S")
    pid = os.getpid()
    bar = "=" * 60
    sub = "-" * 60
    lines = [
        f"E{time.strftime('%m%d %H:%M:%S')}.000000 {pid} torch/distributed/elastic/multiprocessing/api.py:874] "
        f"failed (exitcode: {exitcode}) local_rank: 0 (pid: {pid}) of binary: {sys.executable}",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
        bar,
        f"{script} FAILED",
        sub,
        "Failures:",
        "  <NO_OTHER_FAILURES>",
        sub,
        "Root Cause (first observed failure):",
        "[0]:",
        f"  time      : {now}",
        f"  host      : {socket.gethostname()}",
        f"  rank      : {os.environ.get('RANK', '0')} (local_rank: 0)",
        f"  exitcode  : {exitcode} (pid: {pid})",
        "  error_file: <N/A>",
        "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html",
        bar,
    ]
    for ln in lines:
        _out(ln, err=True)

