"""Which model an argv asks for, and the one place every run starts and ends.

The emulator takes the model's own command line, exactly as cosmoskit would run it on a
GPU host, with or without the launcher in front:

    torchrun [opts] cosmos_transfer1/diffusion/inference/transfer.py ...        Transfer 1
    torchrun [opts] cosmos_transfer1/auxiliary/upsampler/inference/upsampler_pipeline.py ...
    python examples/inference.py -i spec.jsonl -o OUT ...                       Transfer 2.5
    torchrun [opts] examples/inference.py ...
    python -m cosmos_framework.scripts.inference -i ... -o OUT ...              Cosmos 3
    torchrun [opts] -m cosmos_framework.scripts.inference ...
"""

from __future__ import annotations

import os
import re
import signal
import sys

from .common import EmulatorConfigError, _out, _setup_streams
from .torchrun import LaunchContext, _torchrun_failure, parse_launch

TRANSFER1 = "transfer1"
TRANSFER1_UPSAMPLER = "transfer1-upsampler"
TRANSFER25 = "transfer2.5"
COSMOS3 = "cosmos3"

EXPECTED = ("transfer.py, upsampler_pipeline.py, examples/inference.py "
            "or -m cosmos_framework.scripts.inference")

_PYTHON = re.compile(r"^python(\d+(\.\d+)*)?$")


def identify(target, is_module):
    """The model a script path (or a ``-m`` module name) belongs to; None for anything else.

    Transfer 1 is recognised by basename alone, as it always was (its scripts need not
    exist).  Transfer 2.5's script is the generic name ``inference.py``, so its folder
    (``examples/``) is part of the match; Cosmos 3 runs only as a module."""
    if is_module:
        return {"cosmos_framework.scripts.inference": COSMOS3, "examples.inference": TRANSFER25}.get(target)
    norm = target.replace("\\", "/")
    base = os.path.basename(norm)
    if base == "transfer.py":
        return TRANSFER1
    if base == "upsampler_pipeline.py":
        return TRANSFER1_UPSAMPLER
    if norm == "examples/inference.py" or norm.endswith("/examples/inference.py"):
        return TRANSFER25
    if norm.endswith("cosmos_framework/scripts/inference.py"):
        return COSMOS3
    return None


def split_launch(argv):
    """argv -> (LaunchContext, target, is_module, args): drops a leading ``python`` (and reads
    its ``-m``), or hands a ``torchrun`` prefix to parse_launch."""
    if argv and _PYTHON.match(os.path.basename(argv[0])):
        rest = argv[1:]
        while rest and rest[0] in ("-u", "-B", "-O", "-E", "-s", "-I"):
            rest = rest[1:]
        ctx, _, _ = parse_launch(["-"])  # plain python: nproc from $WORLD_SIZE, as the real code reads it
        if rest[:1] == ["-m"]:
            if len(rest) < 2:
                raise EmulatorConfigError("python -m needs a module name")
            return ctx, rest[1], True, rest[2:]
        if not rest:
            raise EmulatorConfigError("python: no script given")
        return ctx, rest[0], False, rest[1:]
    ctx, script, args = parse_launch(argv)
    is_module = bool(ctx.opts.get("m") or ctx.opts.get("module"))
    return ctx, script, is_module, args


def _runner(model):
    # imported on demand: a Transfer 1 run never loads the other models' code
    if model == TRANSFER1:
        from .transfer1 import run_transfer
        return run_transfer
    if model == TRANSFER1_UPSAMPLER:
        from .transfer1 import run_upsampler
        return run_upsampler
    if model == TRANSFER25:
        from .transfer25 import run
        return run
    from .cosmos3 import run
    return run


def _on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # runs atexit cleanup; subprocess.run kills a running ffmpeg


def main(argv=None):
    _setup_streams()
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):
        pass
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        ctx, script, is_module, script_args = split_launch(argv)
    except EmulatorConfigError as e:
        _out(f"cosmos-emulator: error: {e}", err=True)
        return 2
    model = identify(script, is_module)
    if model is None:
        what = f"module {script!r}" if is_module else f"script {script!r}"
        _out(f"cosmos-emulator: error: unsupported {what} (expected {EXPECTED})", err=True)
        return 2
    try:
        code = _runner(model)(script, script_args, ctx)
    except EmulatorConfigError as e:
        _out(f"cosmos-emulator: error: {e}", err=True)
        return 2
    except SystemExit as e:  # argparse/tyro errors (2), --help (0), validation exits (1)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if code and ctx.torchrun:
            _torchrun_failure(script, code)
        return code
    except Exception:
        import traceback

        sys.stdout.flush()
        traceback.print_exc()
        sys.stderr.flush()
        if ctx.torchrun:
            _torchrun_failure(script, 1)
        return 1
    return code or 0


__all__ = ["LaunchContext", "identify", "main", "split_launch"]
