"""Fitting the cost model to the user's hardware from finished batches (``cosmoskit calibrate``).

Each finished batch gives one equation.  Its model ran from the launcher's ``model_started_at`` to its
``model_exited_at`` (stamped to the millisecond, kept in the batch record as ``model_started`` and
``model_exited``); the cost model says that time is::

    D = load_base + load_per_control * n + per_step * W + per_step * factor * W * (n - 1)

with ``n`` the control networks its load carried (``CostModel.networks``) and ``W`` the sum over its
runs of chunks x steps x work.  That is linear in ``a = load_base``, ``b = load_per_control``,
``c = per_step`` and ``g = per_step * factor``, so the fit is least squares with every parameter at
least 0 (exact, by trying every subset of parameters at zero: there are four).  A parameter is fitted
only where the operation's cost section has it (Cosmos 3 has no per-control load), and only when the
batches tell it apart: batches all with one control count cannot separate ``b`` from ``a``, nor ``g``
from ``c``; then it keeps its configured value (the fitted ``a`` and ``c`` absorb it, so estimates for
that control count stay right) and the report says so.  Batches that all did the same amount of
generation cannot separate the load from the generation at all: no fit, and the report says what to run.
Pure functions, tested as tables and on the emulator with known timing knobs (tests/test_calibrate.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cosmoskit._core.costmodel import CostModel

if TYPE_CHECKING:
    from cosmoskit._core.engine import Engine

PARAMS = ("load_base_seconds", "load_per_control_seconds", "chunk_seconds_per_step", "chunk_control_factor")


@dataclass(frozen=True)
class Sample:
    """One finished batch: the control networks its load carried, its runs' work, its model's time."""

    batch: str
    networks: int
    work: float  # sum of chunks x steps x work over its runs
    seconds: float


@dataclass
class Fit:
    """Fitted parameters beside the current ones, with the error of each on the samples."""

    current: dict[str, float]
    fitted: dict[str, float]
    free: list[str]  # the parameters the batches determined
    kept: dict[str, str] = field(default_factory=dict)  # parameter -> why it kept its value
    samples: int = 0
    error: float = 0.0  # mean absolute error of the fit, relative to each batch's time
    error_current: float = 0.0  # the same with the current parameters
    worst: float = 0.0  # the largest relative error of the fit


def predict(params: dict[str, float], sample: Sample) -> float:
    a, b = params["load_base_seconds"], params.get("load_per_control_seconds", 0.0)
    c, f = params["chunk_seconds_per_step"], params.get("chunk_control_factor", 0.0)
    return a + b * sample.networks + c * sample.work * (1 + f * (sample.networks - 1))


def relative_errors(params: dict[str, float], samples: Sequence[Sample]) -> list[float]:
    return [abs(predict(params, s) - s.seconds) / s.seconds for s in samples if s.seconds > 0]


def _nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with every coefficient >= 0: the best of the unconstrained solutions on every subset
    of columns whose coefficients all come out >= 0 (four columns at most, so sixteen subsets)."""
    cols = x.shape[1]
    best, best_res = np.zeros(cols), float(np.sum(y**2))
    for size in range(1, cols + 1):
        for subset in itertools.combinations(range(cols), size):
            sub = x[:, subset]
            coef, *_ = np.linalg.lstsq(sub, y, rcond=None)
            if np.any(coef < 0):
                continue
            res = float(np.sum((sub @ coef - y) ** 2))
            if res < best_res - 1e-12:
                best, best_res = np.zeros(cols), res
                best[list(subset)] = coef
    return best


def fit(samples: Sequence[Sample], current: dict[str, float]) -> Fit:
    """Fit the parameters present in ``current`` (the operation's cost section) to ``samples``."""
    have = [p for p in PARAMS if p in current]
    kept: dict[str, str] = {}
    networks = {s.networks for s in samples}
    free = list(have)
    if len(networks) < 2:  # one control count: the per-control load and the control factor are not seen
        for p in ("load_per_control_seconds", "chunk_control_factor"):
            if p in free:
                free.remove(p)
                kept[p] = "every batch had the same number of control networks"
    if len({round(s.work, 6) for s in samples}) < 2 and "chunk_seconds_per_step" in have:
        # the load and the generation always came in one proportion: nothing tells them apart
        raise ValueError(
            "every batch did the same amount of generation, so the model load and the time per step cannot be "
            "told apart; finish batches with other step counts, lengths or numbers of runs"
        )
    if len(samples) < len(free) + 1:
        raise ValueError(f"{len(samples)} batch(es) cannot fit {len(free)} parameter(s); need {len(free) + 1}")
    f_now = current.get("chunk_control_factor", 0.0)
    columns, names = [], []
    y = np.array([s.seconds for s in samples], dtype=float)
    n = np.array([s.networks for s in samples], dtype=float)
    w = np.array([s.work for s in samples], dtype=float)
    if "load_base_seconds" in free:
        columns.append(np.ones_like(y))
        names.append("a")
    else:
        y = y - current.get("load_base_seconds", 0.0)
    if "load_per_control_seconds" in free:
        columns.append(n)
        names.append("b")
    else:
        y = y - current.get("load_per_control_seconds", 0.0) * n
    if "chunk_seconds_per_step" in free:
        if "chunk_control_factor" in free:
            columns += [w, w * (n - 1)]
            names += ["c", "g"]
        else:  # the factor kept: generation is one column with it folded in
            columns.append(w * (1 + f_now * (n - 1)))
            names.append("c")
    else:
        y = y - current.get("chunk_seconds_per_step", 0.0) * w * (1 + f_now * (n - 1))
    coef = _nnls(np.column_stack(columns), y) if columns else np.zeros(0)
    got = dict(zip(names, (float(v) for v in coef), strict=True))
    fitted = dict(current)
    if "a" in got:
        fitted["load_base_seconds"] = got["a"]
    if "b" in got:
        fitted["load_per_control_seconds"] = got["b"]
    if "c" in got:
        fitted["chunk_seconds_per_step"] = got["c"]
    if "g" in got:
        fitted["chunk_control_factor"] = got["g"] / got["c"] if got["c"] > 0 else 0.0
    errors = relative_errors(fitted, samples)
    return Fit(
        current=dict(current),
        fitted=fitted,
        free=free,
        kept=kept,
        samples=len(samples),
        error=float(np.mean(errors)) if errors else 0.0,
        error_current=float(np.mean(relative_errors(current, samples))) if samples else 0.0,
        worst=max(errors, default=0.0),
    )


@dataclass
class Group:
    """The finished batches of one operation on one executor, and their fit."""

    executor: str
    operation: str
    model: str
    section: str  # where its cost parameters live in cosmoskit.yaml
    samples: list[Sample]
    fit: Fit | None = None
    problem: str = ""  # why there is no fit


def groups(engine: Engine, executor: str | None = None) -> list[Group]:
    """Finished batches (every run completed, the model's stamps kept) by executor and operation, each
    fitted against the operation's configured cost parameters."""
    from cosmoskit._core import timeutil
    from cosmoskit._core.costmodel import model_of
    from cosmoskit._core.errors import CosmoskitError
    from cosmoskit._core.planning import items_for
    from cosmoskit._core.queries import prompts_of

    with engine.ledger.read() as tx:
        batches = [
            b.copy()
            for b in tx.batches()
            if b["state"] == "done" and b.get("model_started") and b.get("model_exited")
            and (executor is None or b["executor"] == executor)
        ]
        runs = {r: tx.run(r) for b in batches for r in b["runs"]}
        prompts = prompts_of(tx, [r for r in runs.values() if r is not None])
    base = CostModel.from_settings(engine.settings)
    found: dict[tuple[str, str], Group] = {}
    for batch in batches:
        docs = [runs[r] for r in batch["runs"]]
        if any(d is None for d in docs):
            continue  # a run deleted since: its work is unknown
        try:
            op = engine.operation(batch["operation"])
        except CosmoskitError:
            continue  # its plugin is gone
        section = op.cost_settings()
        if section is None:
            continue
        items = items_for(engine, [d for d in docs if d is not None], prompts, base)
        model = model_of(items, base)
        seconds = timeutil.seconds_between(batch.get("model_started"), batch.get("model_exited"))
        if seconds is None or seconds <= 0:
            continue
        controls = frozenset().union(*(i.controls for i in items))
        work = sum(i.chunks * i.steps * i.work for i in items)
        key = (batch["executor"], op.name)
        if key not in found:
            found[key] = Group(batch["executor"], op.name, op.model or op.name, section, [])
        found[key].samples.append(Sample(batch["id"], model.networks(controls), float(work), seconds))
    for group in found.values():
        current = {k: float(v) for k, v in (engine.settings.get(group.section) or {}).items() if k in PARAMS}
        try:
            group.fit = fit(group.samples, current)
        except ValueError as exc:
            group.problem = str(exc)
    return sorted(found.values(), key=lambda g: (g.executor, g.operation))


def apply(config: Path, section: str, values: dict[str, float]) -> None:
    """Write ``values`` under the dotted ``section`` of the YAML file ``config``, keeping its comments and
    layout (a round trip through ruamel.yaml); the file is replaced atomically."""
    import os
    import tempfile

    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip mode: comments, order and quoting survive
    data = yaml.load(config.read_text(encoding="utf-8")) or {}
    node = data
    for key in section.split("."):
        if node.get(key) is None:
            node[key] = {}
        node = node[key]
    for key, value in values.items():
        node[key] = round(value, 4) if abs(value) >= 1 else float(f"{value:.4g}")
    fd, tmp = tempfile.mkstemp(dir=config.parent, prefix=".cosmoskit.yaml.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.dump(data, fh)
        os.replace(tmp, config)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
