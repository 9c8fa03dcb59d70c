"""Text a person gives cosmoskit (prompt text, names, notes) must be storable and printable.

The ledger is UTF-8 JSON: a lone surrogate (``"\\udcff"``, what Python makes of undecodable
bytes) cannot be written there, and an outside probe lost a whole drop folder to one.  NUL
cannot reach a model's command line.  Both are refused where the text comes in, with the
position, so nothing fails later inside a transaction.
"""

from __future__ import annotations


def text_problem(text: object, what: str, *, limit: int | None = None) -> str | None:
    """Why ``text`` cannot be stored as ``what``, or None."""
    if not isinstance(text, str):
        return f"{what} must be text, not {type(text).__name__}"
    for i, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            return f"{what} is not valid Unicode: a lone surrogate {ch!r} at character {i + 1}"
        if ch == "\x00":
            return f"{what} holds a NUL character at character {i + 1}"
    if limit is not None and len(text) > limit:
        return f"{what} is {len(text)} characters long; at most {limit}"
    return None


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (ESC, NUL …) shown as escapes, never sent raw."""
    out = []
    for ch in text:
        if ch in "\n\t":
            out.append(ch)
        elif ord(ch) < 32 or 127 <= ord(ch) < 160:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)
