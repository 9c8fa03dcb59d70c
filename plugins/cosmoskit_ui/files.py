"""What the server may hand out: files inside the project home, and nothing else.

Every path is resolved (``..`` and symbolic links followed) before it is checked, so neither
``/files/../../etc/passwd`` nor a link in the home pointing outside it gets out.  The ledger
folder and hidden files are refused too (the ledger is read through the engine, not downloaded),
except the UI's own preview cache.
"""
from __future__ import annotations

from pathlib import Path

UI_DIR = ".cosmoskit-ui"  # previews and thumbnails the UI makes, inside the project home
REFUSED_TOP = frozenset({"ledger"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".webm", ".mkv", ".m4v"})


class Refused(Exception):
    """A path the server will not serve (outside the home, hidden, the ledger, or not a file)."""


def inside(home: Path, target: Path) -> bool:
    try:
        return target.resolve().is_relative_to(home.resolve())
    except (OSError, RuntimeError):  # a loop of links
        return False


def servable(home: Path, rel: str) -> Path:
    """The file ``rel`` names under ``home``, or :class:`Refused`."""
    if not rel or "\x00" in rel or rel.startswith(("/", "\\")) or "\\" in rel:
        raise Refused(rel)
    root = home.resolve()
    try:
        path = (root / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        raise Refused(rel) from None
    if not path.is_relative_to(root) or path == root or not path.is_file():
        raise Refused(rel)
    parts = path.relative_to(root).parts
    if parts[0] in REFUSED_TOP:
        raise Refused(rel)
    if any(p.startswith(".") for p in parts) and parts[0] != UI_DIR:
        raise Refused(rel)
    return path


def rel_url(home: Path, path: str | Path) -> str | None:
    """``/files/<rel>`` for a file inside the home, else None (the UI shows a preview of it instead)."""
    from urllib.parse import quote

    p = Path(path)
    if not p.is_absolute():
        p = home / p
    try:
        rel = p.resolve().relative_to(home.resolve())
    except (OSError, ValueError, RuntimeError):
        return None
    if not rel.parts or rel.parts[0] in REFUSED_TOP:
        return None
    return "/files/" + quote(rel.as_posix())
