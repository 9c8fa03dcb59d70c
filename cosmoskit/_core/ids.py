"""Record ids (``ps_…``, ``rs_…``, ``bt_…``) and git-style unique-prefix lookup."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from cosmoskit._core.errors import CosmoskitError

KINDS = {"ps": "prompt", "rs": "run", "bt": "batch", "sw": "sweep"}
# where a person sees the ids of each kind (only commands that exist)
LISTED_BY = {"ps": "cosmoskit prompt list", "rs": "cosmoskit run list", "bt": "cosmoskit status",
             "sw": "cosmoskit run list"}


def new_id(kind: str) -> str:
    assert kind in KINDS
    return f"{kind}_{secrets.token_hex(6)}"


def normalise(kind: str, text: str) -> str:
    text = text.strip()
    if not text.startswith(f"{kind}_"):
        if "_" in text[:3]:
            raise CosmoskitError(f"{text!r} is not a {KINDS[kind]} id (those start with {kind}_)")
        text = f"{kind}_{text}"
    return text


def resolve(kind: str, text: str, candidates: Iterable[str], *, names: bool = False) -> str:
    """Return the one id starting with ``text`` (with or without its ``kind_`` prefix).

    ``names``: the kind can also be named, so text that is not an id is "no match", not a malformed id."""
    try:
        prefix = normalise(kind, text)
    except CosmoskitError:
        if not names:
            raise
        raise CosmoskitError(f"no {KINDS[kind]} is named {text!r} or has an id starting so",
                             hint=f"`{LISTED_BY[kind]}` shows them") from None
    if len(prefix) <= len(kind) + 1:
        raise CosmoskitError(f"give at least one character of the {KINDS[kind]} id after {kind}_")
    matches = [c for c in candidates if c.startswith(prefix)]
    if prefix in matches:
        return prefix
    if not matches:
        raise CosmoskitError(f"no {KINDS[kind]} matches {text!r}", hint=f"`{LISTED_BY[kind]}` shows them")
    if len(matches) > 1:
        shown = ", ".join(sorted(matches)[:5]) + (" …" if len(matches) > 5 else "")
        raise CosmoskitError(f"{text!r} matches {len(matches)} {KINDS[kind]}s ({shown}); give more characters")
    return matches[0]
