"""The sweep builder: several control-weight sets times several seeds, as ``submit`` variations.

The form sends ``w.<set>.<control>`` sliders (0 leaves the control out) and a seed list such as
``1, 2, 10-12``; each weight set is crossed with each seed.  Nothing here writes: the page shows
how many runs and how much GPU time before anything is queued.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cosmoskit.api import CosmoskitError

MAX_RUNS = 1000  # one click should not queue a month of GPU time by a typo ("1-100000")
_KEY = re.compile(r"^w\.(\d+)\.(\w+)$")
OPTIONAL_NUMBERS = {"num_steps": int, "guidance": float, "sigma_max": float}


@dataclass(frozen=True)
class Sweep:
    weight_sets: list[dict[str, float]]
    seeds: list[int | None]
    params: dict[str, Any] = field(default_factory=dict)  # shared by every run
    priority: int = 0

    @property
    def variations(self) -> list[dict[str, Any]]:
        out = []
        for weights in self.weight_sets:
            for seed in self.seeds:
                v: dict[str, Any] = {"weights": dict(weights)}
                if seed is not None:
                    v["seed"] = seed
                out.append(v)
        return out

    @property
    def count(self) -> int:
        return len(self.weight_sets) * len(self.seeds)


def parse_seeds(text: str) -> list[int | None]:
    """The command line's sweep form (``1,2,10-12``; spaces also separate, ``5..6`` is ``5-6``) through
    ``api.sweep_values``, so the browser and ``transfer --seed`` read seeds alike; empty -> [None] (the
    configured seed)."""
    from cosmoskit import api

    parts = [p for p in re.split(r"[,\s]+", re.sub(r"\s*\.\.\s*", "-", text or "")) if p]
    if not parts:
        return [None]
    seeds: list[int | None] = list(api.sweep_values("seeds", ",".join(parts), int))
    if len(seeds) > MAX_RUNS:
        raise CosmoskitError(f"seeds {text!r}: {len(seeds)} seeds, more than the {MAX_RUNS} a sweep here may make")
    return seeds


def parse(form: Any) -> Sweep:
    """A :class:`Sweep` from the submitted form (a Starlette FormData or a plain dict)."""
    sets: dict[int, dict[str, float]] = {}
    for key in list(form):
        m = _KEY.match(key)
        if not m:
            continue
        raw = form.get(key)
        try:
            value = float(raw) if raw not in (None, "") else 0.0
        except ValueError:
            raise CosmoskitError(f"weight {m.group(2)}={raw!r} is not a number") from None
        sets.setdefault(int(m.group(1)), {})[m.group(2)] = value
    weight_sets = []
    for index in sorted(sets):
        used = {k: v for k, v in sets[index].items() if v > 0}
        if used:
            weight_sets.append(used)
    if not weight_sets:
        raise CosmoskitError("set at least one control weight above 0 in a weight set")
    seeds = parse_seeds(str(form.get("seeds") or ""))
    params: dict[str, Any] = {}
    for name, kind in OPTIONAL_NUMBERS.items():
        raw = form.get(name)
        if raw not in (None, ""):
            try:
                params[name] = kind(raw)
            except ValueError:
                raise CosmoskitError(f"{name.replace('_', ' ')} {raw!r} is not a number") from None
    try:
        priority = int(form.get("priority") or 0)
    except ValueError:
        raise CosmoskitError(f"priority {form.get('priority')!r} is not a whole number") from None
    sweep = Sweep(weight_sets, seeds, params, priority)
    if sweep.count > MAX_RUNS:
        raise CosmoskitError(f"{sweep.count} runs is more than {MAX_RUNS} at once; split the sweep")
    return sweep
