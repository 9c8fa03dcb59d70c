"""Read-side helpers over the ledger shared by commands."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterable

from cosmoskit._core.ledger import RUN_ACTIVE, Tx


def run_folder(home: Path, run_id: str) -> Path:
    return home / "outputs" / f"run_{run_id}"


def list_runs(tx: Tx, *, status: Iterable[str] | None = None, prompt_id: str | None = None,
              operation: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Runs matching the filters, newest first.

    History files are per month of creation and read newest first, stopping
    as soon as ``limit`` matches are certain, so a short list of recent runs
    never reads years of history.
    """
    statuses = set(status) if status else None

    def match(run: dict[str, Any]) -> bool:
        return ((statuses is None or run["status"] in statuses)
                and (prompt_id is None or run.get("prompt_id") == prompt_id)
                and (operation is None or run.get("operation") == operation))

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
    return [dict(r) for r in found]


def queued(tx: Tx) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The queued runs (copies) and the prompts they need, as the planner takes them."""
    runs = [dict(r) for r in tx.active_runs() if r["status"] == "queued"]
    prompts = {r["prompt_id"]: tx.prompt(r["prompt_id"]) for r in runs if r.get("prompt_id")}
    return runs, prompts


def run_counts(tx: Tx) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in tx.runs():
        counts[run["prompt_id"]] = counts.get(run["prompt_id"], 0) + 1
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
