"""Sweeps: many variations of a shot in one command (``--seed 1-8 -w vis=1 -w depth=0.5,seg=0.5``).

A value list is written ``1,2,3``, with ranges for integers (``1-8``, ``1-8,20``); each option given
several values is an axis, and a sweep is every combination of the axes, for every prompt, in a stable
order (prompt, then the axes as given).  Pure functions: the command line and the drop folder's
sidecar read the same forms, and ``tests/test_sweep.py`` holds them as tables.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from cosmoskit._core.errors import CosmoskitError

_RANGE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*$")
MAX_RANGE = 100_000  # a typo like 1-999999999 is not a sweep anyone wants


def parse_values(option: str, text: str | int | float, kind: type) -> list[Any]:
    """``"1,2,5-7"`` -> ``[1, 2, 5, 6, 7]`` for ints; ``"3,7.5"`` -> ``[3.0, 7.5]`` for floats.

    Values keep their order and repeats are an error (the same run twice is a mistake, not a sweep)."""
    if isinstance(text, bool):
        raise CosmoskitError(f"{option} takes numbers, not {text!r}")
    if isinstance(text, (int, float)):
        return [kind(text)]
    values: list[Any] = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            raise CosmoskitError(f"{option} {text!r}: an empty value between commas")
        ranged = _RANGE.match(part) if kind is int else None
        if ranged:
            lo, hi = int(ranged.group(1)), int(ranged.group(2))
            if hi < lo:
                raise CosmoskitError(f"{option} {part!r}: a range runs from low to high")
            if hi - lo + 1 > MAX_RANGE:
                raise CosmoskitError(f"{option} {part!r}: more than {MAX_RANGE} values")
            values.extend(range(lo, hi + 1))
            continue
        try:
            values.append(kind(part))
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise CosmoskitError(f"{option} {text!r}: {part!r} is not {what}") from None
    seen = set()
    for v in values:
        if v in seen:
            raise CosmoskitError(f"{option} {text!r}: {v} is given twice")
        seen.add(v)
    return values


def variations(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the axes (an axis with one value is a fixed parameter), in the axes' order."""
    keys = [k for k, values in axes.items() if values]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(axes[k] for k in keys))]


def count(prompts: int, axes: dict[str, list[Any]]) -> int:
    total = prompts
    for values in axes.values():
        total *= max(1, len(values))
    return total
