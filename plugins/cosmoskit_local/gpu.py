"""What this machine has: GPUs from nvidia-smi, free disk."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

NVIDIA_QUERY = "name,memory.used,memory.total,utilization.gpu,temperature.gpu"


def parse_nvidia_smi(text: str) -> list[dict[str, Any]]:
    """Rows of ``nvidia-smi --query-gpu=NVIDIA_QUERY --format=csv,noheader,nounits``."""
    gpus = []
    for i, line in enumerate(l for l in text.splitlines() if l.strip()):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 5:
            continue

        def num(v: str) -> float | None:
            try:
                return float(v)
            except ValueError:
                return None

        gpus.append({"index": i, "name": parts[0], "memory_used_mb": num(parts[1]), "memory_total_mb": num(parts[2]),
                     "utilization_pct": num(parts[3]), "temperature_c": num(parts[4])})
    return gpus


def local_status(home: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"reachable": True, "host": "localhost"}
    smi = shutil.which("nvidia-smi")
    if smi:
        proc = subprocess.run([smi, f"--query-gpu={NVIDIA_QUERY}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True)
        out["gpus"] = parse_nvidia_smi(proc.stdout) if proc.returncode == 0 else []
        if proc.returncode != 0:
            out["gpu_error"] = proc.stderr.strip()[:200]
    else:
        out["gpus"] = []
        out["gpu_error"] = "no nvidia-smi on this machine"
    usage = shutil.disk_usage(home if home.exists() else Path.home())
    out["disk_free_bytes"] = usage.free
    return out
