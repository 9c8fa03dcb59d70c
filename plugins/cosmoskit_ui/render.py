"""HTML from Jinja templates (autoescaped: prompt texts, notes and errors are user text) and the
small formatters the templates use."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
CONTROL_ORDER = ("vis", "edge", "depth", "seg", "keypoint")
MAIN_OUTPUT = {"transfer": "output.mp4", "upscale": "upscaled.mp4", "enhance": "enhanced_prompt.txt"}


def duration(seconds: float | None) -> str:
    """``45 s``, ``12.5 min``, ``3.2 h``: estimates and GPU time for people."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def short_time(stamp: str | None) -> str:
    """A ledger timestamp in local time, to the second."""
    if not stamp:
        return ""
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def human_size(n: int | float | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def weights_text(run: dict[str, Any]) -> str:
    weights = (run.get("params") or {}).get("weights") or {}
    return " ".join(f"{k}={v:g}" for k, v in weights.items() if isinstance(v, (int, float)))


def num(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(duration=duration, short_time=short_time, human_size=human_size, weights=weights_text,
                       num=num)
    env.globals.update(CONTROL_ORDER=CONTROL_ORDER, MAIN_OUTPUT=MAIN_OUTPUT)
    return env
