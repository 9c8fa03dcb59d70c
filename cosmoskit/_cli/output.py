"""Printing: JSON for machines, rich for people."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from cosmoskit._core.textcheck import printable

_console = None
_err_console = None


def console() -> Any:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False, soft_wrap=False)
    return _console


def err_console() -> Any:
    global _err_console
    if _err_console is None:
        from rich.console import Console

        _err_console = Console(stderr=True, highlight=False)
    return _err_console


def emit_json(data: Any) -> None:
    import orjson

    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")
    sys.stdout.flush()


def table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[Any]], **kw: Any) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold", **kw)
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else v if hasattr(v, "__rich__") else printable(str(v)) for v in row))
    console().print(t)


def say(text: str) -> None:
    console().print(text)


def warn(text: str) -> None:
    err_console().print(f"[yellow]{escape(text)}[/yellow]")


def escape(text: str) -> str:
    """User text (a prompt, a name, an error) safe to print: no rich markup, no raw control characters
    (a prompt holding ESC or NUL must not drive the terminal)."""
    from rich.markup import escape as _escape

    return _escape(printable(text))


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def short_time(stamp: str | None) -> str:
    if not stamp:
        return ""
    return stamp[:19].replace("T", " ")
