"""Timestamps as ISO-8601 UTC strings, which sort as they compare."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (parse(end) - parse(start)).total_seconds()
