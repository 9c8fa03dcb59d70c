"""Shell completion of what only the project knows: prompt, run and batch ids, executors, strategies, models.

Completion runs on every Tab, so it reads the ledger's files directly (no lock: commits are atomic
renames, so a reader sees a whole file) and never fails loudly: no suggestions is the worst case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Completer = Callable[[str], list[tuple[str, str]]]


def _records(rel: str, table: str) -> dict[str, Any]:
    try:
        import orjson

        from cosmoskit._core import context

        data = orjson.loads((context.home() / "ledger" / rel).read_bytes())
        found = data.get(table, {})
        return found if isinstance(found, dict) else {}
    except Exception:  # no project, no ledger yet, a damaged file: nothing to suggest
        return {}


def _matching(pairs: Iterable[tuple[str, str]], incomplete: str) -> list[tuple[str, str]]:
    return [(value, help_) for value, help_ in pairs if value.startswith(incomplete)][:200]


def prompts(incomplete: str) -> list[tuple[str, str]]:
    found = _records("prompts.json", "prompts")
    by_id = ((pid, str(p.get("name", ""))) for pid, p in found.items())
    by_name = ((str(p["name"]), pid) for pid, p in found.items() if p.get("name"))
    return _matching([*by_id, *by_name], incomplete)


def runs(incomplete: str) -> list[tuple[str, str]]:
    active = _records("active.json", "runs")
    listed = {rid: f"{r.get('operation', '')} {r.get('status', '')}" for rid, r in active.items()}
    for rid in _records("index.json", "runs"):
        listed.setdefault(rid, "finished")
    return _matching(listed.items(), incomplete)


def batches(incomplete: str) -> list[tuple[str, str]]:
    active = _records("active.json", "batches")
    return _matching(
        ((bid, f"{b.get('state', '')} on {b.get('executor', '')}") for bid, b in active.items()), incomplete
    )


def runs_and_batches(incomplete: str) -> list[tuple[str, str]]:
    return [*runs(incomplete), *batches(incomplete)]


def _names(get: Callable[[], Iterable[str]]) -> Completer:
    def complete(incomplete: str) -> list[tuple[str, str]]:
        try:
            return _matching(((name, "") for name in get()), incomplete)
        except Exception:
            return []

    return complete


def _executor_names() -> list[str]:
    from cosmoskit._core import context

    return context.settings().executor_names()


def _strategy_names() -> list[str]:
    from cosmoskit._core import plugins

    return plugins.strategy_names()


def _model_names() -> list[str]:
    from cosmoskit._core import plugins

    return plugins.models("transfer")


def _operation_names() -> list[str]:
    from cosmoskit._core import plugins

    return plugins.operation_names()


executors = _names(_executor_names)
strategies = _names(_strategy_names)
models = _names(_model_names)
operations = _names(_operation_names)
