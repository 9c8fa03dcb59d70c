"""Read-side helpers over the ledger shared by commands."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from cosmoskit._core.ledger import RUN_ACTIVE, Tx
from cosmoskit._core.records import PromptRecord, RunRecord


def run_folder(home: Path, run_id: str) -> Path:
    return home / "outputs" / f"run_{run_id}"


def list_runs(
    tx: Tx,
    *,
    status: Iterable[str] | None = None,
    prompt_id: str | None = None,
    operation: str | None = None,
    sweep: str | None = None,
    limit: int | None = None,
) -> list[RunRecord]:
    """Runs matching the filters, newest first.

    History files are per month of creation and read newest first, stopping
    as soon as ``limit`` matches are certain, so a short list of recent runs
    never reads years of history.
    """
    statuses = set(status) if status else None

    def match(run: dict[str, Any]) -> bool:
        return (
            (statuses is None or run["status"] in statuses)
            and (prompt_id is None or run.get("prompt_id") == prompt_id)
            and (operation is None or run.get("operation") == operation)
            and (sweep is None or run.get("sweep") == sweep)
        )

    found = [r for r in tx.raw("active.json", "runs").values() if match(r)]
    want_history = statuses is None or bool(statuses - RUN_ACTIVE)
    if want_history:
        for month in tx.history_months():
            if limit is not None:
                # every later month holds only older runs
                newer = sum(1 for r in found if r["created"][:7] > month)
                if newer >= limit:
                    break
            found.extend(r for r in tx.raw(f"history/{month}.json", "runs").values() if match(r))
    found.sort(key=lambda r: r["created"], reverse=True)
    if limit is not None:
        found = found[:limit]
    return [cast(RunRecord, dict(r)) for r in found]


def prompts_of(tx: Tx, runs: Iterable[RunRecord]) -> dict[str, PromptRecord]:
    """The prompts these runs were made from, by id (a prompt deleted meanwhile is left out)."""
    found: dict[str, PromptRecord] = {}
    for run in runs:
        pid = run.get("prompt_id")
        if pid and pid not in found:
            prompt = tx.prompt(pid)
            if prompt is not None:
                found[pid] = prompt
    return found


def queued(tx: Tx) -> tuple[list[RunRecord], dict[str, PromptRecord]]:
    """The queued runs (copies) and the prompts they need, as the planner takes them."""
    runs = [r.copy() for r in tx.active_runs() if r["status"] == "queued" and not held(r)]
    return runs, prompts_of(tx, runs)


def held(run: RunRecord) -> bool:
    """Held for a foreground command that runs it itself, while that command lives."""
    from cosmoskit._core import owner

    holder = run.get("held_by")
    return holder is not None and owner.alive(holder) and not owner.is_me(holder)


def run_counts(tx: Tx) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in tx.runs():
        key = run["prompt_id"] or ""
        counts[key] = counts.get(key, 0) + 1
    return counts


def folder_size(path: Path) -> int:
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def remove_folder(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
