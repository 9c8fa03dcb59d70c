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

        # soft wrap: a long line (a path, an id) is never broken in two; the terminal folds it if it must
        _console = Console(highlight=False, soft_wrap=True)
    return _console


def err_console() -> Any:
    global _err_console
    if _err_console is None:
        from rich.console import Console

        _err_console = Console(stderr=True, highlight=False, soft_wrap=True)
    return _err_console


def emit_json_line(data: Any) -> None:
    """One compact JSON object on a line of its own (for streams of events)."""
    import orjson

    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS) + b"\n")
    sys.stdout.flush()


def emit_json(data: Any) -> None:
    import orjson

    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")
    sys.stdout.flush()


FORMATS = ("table", "plain", "tsv", "json")
_format: str | None = None  # what a command's --format asked for; None: a table on a terminal, plain in a pipe


def use_format(fmt: str | None) -> None:
    global _format
    if fmt is not None and fmt not in FORMATS:
        from cosmoskit._core.errors import CosmoskitError

        raise CosmoskitError(f"--format {fmt!r}: one of {', '.join(FORMATS)}", exit_code=2)
    _format = fmt


def table_format() -> str:
    """How tables print now: as asked, else a rich table for a person, plain columns for a pipe (a pipe
    never gets wrapped or cut cells: `cosmoskit run list | grep failed` sees whole ids)."""
    if _format in ("table", "plain", "tsv"):
        return _format
    return "table" if sys.stdout.isatty() else "plain"


def table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[Any]], **kw: Any) -> None:
    fmt = table_format()
    if fmt != "table":
        _plain_table(list(columns), [[_cell(v) for v in row] for row in rows], tsv=fmt == "tsv")
        return
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold", **kw)
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else v if hasattr(v, "__rich__") else printable(str(v)) for v in row))
    console().print(t)


def _cell(value: Any) -> str:
    """A cell as plain text: markup gone, control characters escaped, one line."""
    if value is None:
        return ""
    if hasattr(value, "plain"):
        text = value.plain
    else:
        text = str(value)
        if "[" in text:
            from rich.text import Text

            try:
                text = Text.from_markup(text).plain
            except Exception:  # text that only looks like markup stays as it is
                pass
    return printable(text).replace("\n", " ").replace("\t", " ")


def _plain_table(columns: list[str], rows: list[list[str]], *, tsv: bool) -> None:
    lines: list[list[str]] = [columns, *rows]
    if tsv:
        out = "\n".join("\t".join(line) for line in lines)
    else:
        widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
        out = "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)
    sys.stdout.write(out + "\n")


def ids(values: Iterable[str]) -> None:
    """``-q``: only ids, one per line (for `xargs`)."""
    sys.stdout.write("".join(f"{v}\n" for v in values))


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
