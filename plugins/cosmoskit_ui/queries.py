"""Filters, sort and pages over a snapshot: what the Runs, Prompts and Queue pages ask for.

Everything happens on the server, so a page of a 10,000-run ledger sends 50 runs, not 10,000.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from cosmoskit.api import RUN_STATUSES, PromptRecord, RunRecord
from cosmoskit_ui.snapshot import Snapshot

T = TypeVar("T")
RUNS_PER_PAGE = 48
PROMPTS_PER_PAGE = 40
QUEUE_PER_PAGE = 100
SORTS = ("newest", "oldest", "rating", "status", "priority")
STATUS_RANK = {s: i for i, s in enumerate(("running", "fetching", "staging", "queued", "failed", "cancelled",
                                            "completed"))}


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int  # 1-based
    pages: int
    total: int
    per_page: int

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.per_page


def paginate(items: Sequence[T], page: int, per_page: int) -> Page[T]:
    total = len(items)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    return Page(list(items[start:start + per_page]), page, pages, total, per_page)


def to_int(text: str | None, default: int) -> int:
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        return default


@dataclass(frozen=True)
class RunFilter:
    statuses: frozenset[str] = frozenset()
    operation: str = ""
    prompt: str = ""  # prompt id
    rating: str = ""  # "", "unrated", or a minimum 1..5
    q: str = ""
    sort: str = "newest"
    page: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, query: Any) -> RunFilter:
        statuses = frozenset(s for v in query.getlist("status") for s in v.split(",") if s in RUN_STATUSES)
        sort = query.get("sort") or "newest"
        return cls(statuses, query.get("op") or "", query.get("prompt") or "", query.get("rating") or "",
                   (query.get("q") or "").strip(), sort if sort in SORTS else "newest", to_int(query.get("page"), 1))

    def query(self, **changes: Any) -> str:
        """This filter as a query string, with ``changes`` (a page link, a sort link)."""
        values: dict[str, Any] = {"status": ",".join(sorted(self.statuses)), "op": self.operation,
                                  "prompt": self.prompt, "rating": self.rating, "q": self.q,
                                  "sort": "" if self.sort == "newest" else self.sort, "page": self.page}
        values.update(changes)
        if values.get("page") == 1:
            values["page"] = ""
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})


def run_matches(snap: Snapshot, f: RunFilter) -> Callable[[RunRecord], bool]:
    q = f.q.lower()
    min_rating = to_int(f.rating, 0) if f.rating not in ("", "unrated") else 0

    def match(run: RunRecord) -> bool:
        if f.statuses and run["status"] not in f.statuses:
            return False
        if f.operation and run["operation"] != f.operation:
            return False
        if f.prompt and run.get("prompt_id") != f.prompt:
            return False
        rating = run.get("rating") or 0
        if f.rating == "unrated" and rating:
            return False
        if min_rating and rating < min_rating:
            return False
        if q:
            prompt = snap.prompts.get(run.get("prompt_id") or "")
            hay = " ".join(str(x) for x in (run["id"], run["operation"], run["status"], run.get("error") or "",
                                            run.get("note") or "", run.get("reason") or "",
                                            prompt["name"] if prompt else "", prompt["text"] if prompt else ""))
            if q not in hay.lower():
                return False
        return True

    return match


def sort_runs(runs: list[RunRecord], how: str) -> list[RunRecord]:
    """``runs`` come newest first; other orders are stable sorts on top of that."""
    if how == "oldest":
        return runs[::-1]
    if how == "rating":
        return sorted(runs, key=lambda r: -(r.get("rating") or 0))
    if how == "status":
        return sorted(runs, key=lambda r: STATUS_RANK.get(r["status"], 99))
    if how == "priority":
        return sorted(runs, key=lambda r: -(r.get("priority") or 0))
    return runs


def find_runs(snap: Snapshot, f: RunFilter, per_page: int = RUNS_PER_PAGE) -> Page[RunRecord]:
    match = run_matches(snap, f)
    return paginate(sort_runs([r for r in snap.runs if match(r)], f.sort), f.page, per_page)


def find_prompts(snap: Snapshot, q: str, page: int, per_page: int = PROMPTS_PER_PAGE) -> Page[PromptRecord]:
    needle = q.lower().strip()
    prompts = sorted(snap.prompts.values(), key=lambda p: p.get("created") or "", reverse=True)
    if needle:
        prompts = [p for p in prompts
                   if needle in f"{p['id']} {p['name']} {p['text']} {p.get('negative_prompt') or ''}".lower()]
    return paginate(prompts, page, per_page)


def queue_order(snap: Snapshot) -> list[RunRecord]:
    """Queued runs by priority (highest first), then age: the order a strategy starts from."""
    return sorted(snap.queued(), key=lambda r: (-(r.get("priority") or 0), r.get("created") or "", r["id"]))
