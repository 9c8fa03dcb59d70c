"""Record ids (``ps_…``, ``rs_…``, ``bt_…``) and git-style unique-prefix lookup."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from cosmoskit._core.errors import CosmoskitError

KINDS = {"ps": "prompt", "rs": "run", "bt": "batch", "sw": "sweep"}


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


def resolve(kind: str, text: str, candidates: Iterable[str]) -> str:
    """Return the one id starting with ``text`` (with or without its ``kind_`` prefix)."""
    prefix = normalise(kind, text)
    if len(prefix) <= len(kind) + 1:
        raise CosmoskitError(f"give at least one character of the {KINDS[kind]} id after {kind}_")
    matches = [c for c in candidates if c.startswith(prefix)]
    if prefix in matches:
        return prefix
    if not matches:
        raise CosmoskitError(f"no {KINDS[kind]} matches {text!r}", hint=f"`cosmoskit {KINDS[kind]} list` shows them")
    if len(matches) > 1:
        shown = ", ".join(sorted(matches)[:5]) + (" …" if len(matches) > 5 else "")
        raise CosmoskitError(f"{text!r} matches {len(matches)} {KINDS[kind]}s ({shown}); give more characters")
    return matches[0]
