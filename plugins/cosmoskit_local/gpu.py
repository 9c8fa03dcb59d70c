"""What this machine has: GPUs from nvidia-smi, free disk."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from cosmoskit.api import NVIDIA_QUERY, ExecutorStatus, parse_nvidia_smi


def local_status(home: Path) -> ExecutorStatus:
    out = ExecutorStatus(host="localhost", reachable=True)
    smi = shutil.which("nvidia-smi")
    if smi:
        proc = subprocess.run([smi, f"--query-gpu={NVIDIA_QUERY}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            out.gpus = parse_nvidia_smi(proc.stdout)
        else:
            out.gpu_note = proc.stderr.strip()[:200]
    else:
        out.gpu_note = "no nvidia-smi on this machine"
    out.disk_free_bytes = shutil.disk_usage(home if home.exists() else Path.home()).free
    return out
