#!/usr/bin/env python3
"""cosmos-emulator: a CPU stand-in for the NVIDIA Cosmos models (no GPU, no weights).

    python3 cosmos_emulator.py torchrun --nproc_per_node=1 cosmos_transfer1/diffusion/inference/transfer.py ...
    python3 cosmos_emulator.py python examples/inference.py -i batch.jsonl -o OUT          (Transfer 2.5)
    python3 cosmos_emulator.py python -m cosmos_framework.scripts.inference -i ... -o OUT  (Cosmos 3)

This file only starts the package beside it (``emulator/``), from the source tree or an
installed wheel.  GPU hosts get the same package as one zipapp built by
``cosmoskit._core.remotefiles``.  Every video it writes is labelled "COSMOS EMULATOR" and is
NOT a model output.  See docs/emulator.md.
"""
import os
import sys

# Run by path, Python puts this folder first on sys.path already; say so for other launches.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path[:1] != [_HERE]:
    sys.path.insert(0, _HERE)

from emulator.dispatch import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
