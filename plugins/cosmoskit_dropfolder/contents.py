"""What a dropped folder holds: a walk of its files, its content hash and the fingerprint that names it.

The walk (name, size, mtime of every file) is what the settle rule compares; the content hash (every
file's SHA-256) is the folder's identity in the ingest table, together with the path it was dropped at.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cosmoskit_dropfolder import layout, prepare

PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".filepart", ".download", ".!sync",
                    ".opdownload", ".swp")
_RSYNC_TEMP = re.compile(r"^\..+\.[A-Za-z0-9]{6}$")

Sig = tuple[tuple[str, int, int], ...]   # every file but cosmoskit's own: (relative path, size, mtime_ns)


def printable(text: str) -> str:
    """A name safe for the ledger and one log line (undecodable bytes and control characters replaced)."""
    text = os.fsencode(text).decode("utf-8", "replace")
    return re.sub(r"[\x00-\x1f\x7f]", "?", text)


def ingest_key(path: str, digest: str) -> str:
    return f"{path}|{digest[:24]}"


@dataclass
class Walk:
    sig: Sig
    marker: bool            # a READY file at the top
    partial: str | None     # the first file that looks like a copy in progress
    problems: list[str]

    @property
    def empty(self) -> bool:
        return not any(os.path.basename(rel) not in layout.MARKER_NAMES for rel, _, _ in self.sig)

    def digest(self) -> str:
        h = hashlib.sha256()
        for rel, size, mtime in self.sig:
            h.update(f"{rel}\t{size}\t{mtime}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()


def looks_partial(name: str) -> bool:
    """A file name a copy in progress uses (browser downloads, rsync's ``.name.XXXXXX``, office locks)."""
    return name.lower().endswith(PARTIAL_SUFFIXES) or bool(_RSYNC_TEMP.match(name)) or name.startswith(".~lock")


def walk(folder: Path) -> Walk:
    """Stat every file below ``folder`` (symbolic links are not followed; one reaching outside is a problem)."""
    root = os.path.realpath(folder)
    outputs = prepare.own_outputs(folder)
    sig: list[tuple[str, int, int]] = []
    problems: list[str] = []
    marker = False
    partial = None
    stack = [("", str(folder))]
    while stack:
        rel_dir, path = stack.pop()
        with os.scandir(path) as it:
            entries = list(it)
        for e in entries:
            rel = f"{rel_dir}{e.name}"
            if not rel_dir and (e.name in (layout.OWN_NAMES) or e.name.startswith(layout.OWN_PREFIX)
                                or e.name in outputs):
                continue
            if e.is_symlink():
                target = os.path.realpath(e.path)
                if not os.path.isabs(os.readlink(e.path)) and (target == root or target.startswith(root + os.sep)) \
                        and os.path.exists(target):
                    st = os.stat(e.path)
                    sig.append((rel, st.st_size, st.st_mtime_ns))
                else:
                    where = "nothing (a broken link)" if not os.path.exists(target) else printable(target)
                    problems.append(f"{printable(rel)}: a symbolic link to {where}; names may not reach outside "
                                    f"the folder (copy the file in instead)")
                continue
            if e.is_dir(follow_symlinks=False):
                stack.append((rel + "/", e.path))
                continue
            if not e.is_file(follow_symlinks=False):
                problems.append(f"{printable(rel)}: not a regular file")
                continue
            st = e.stat(follow_symlinks=False)
            sig.append((rel, st.st_size, st.st_mtime_ns))
            if not rel_dir and e.name in layout.MARKER_NAMES:
                marker = True
            if looks_partial(e.name):
                partial = partial or rel
    sig.sort()
    return Walk(tuple(sig), marker, partial, problems)


def content_hash(folder: Path, w: Walk) -> tuple[str, int, int]:
    """(sha256 over every file's name and content, files, bytes); READY and hidden files are left out."""
    h = hashlib.sha256()
    files = size = 0
    for rel, _, _ in w.sig:
        base = os.path.basename(rel)
        if base in layout.MARKER_NAMES or base.startswith(".") or "/." in f"/{rel}":
            continue
        fh = hashlib.sha256()
        with open(folder / rel, "rb") as f:
            while block := f.read(1 << 20):
                fh.update(block)
                size += len(block)
        files += 1
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + fh.hexdigest().encode() + b"\n")
    return h.hexdigest(), files, size


@dataclass
class Fingerprint:
    """A dropped folder as the ingest decisions see it: where it was dropped, where it is, what it holds."""

    name: str
    path: str         # where it was dropped (its identity)
    folder: Path      # where it is now
    hash: str
    sig_digest: str
    sig: Sig
    files: int
    bytes: int
    problems: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return ingest_key(self.path, self.hash)


def fingerprint(name: str, path: Path, w: Walk | None) -> Fingerprint:
    """Hash a folder (runs on a pool thread); what makes it unacceptable whatever it holds goes to ``problems``."""
    problems: list[str] = []
    shown = printable(name)
    if name != shown or name.strip() != name:
        problems.append(f"the folder name {shown!r} holds control characters, undecodable bytes or "
                        f"surrounding spaces; rename it")
    if path.is_symlink():
        problems.append(f"{shown} is a symbolic link (to {printable(os.path.realpath(path))}); "
                        f"drop the folder itself, names may not reach outside the drop folder")
        return Fingerprint(shown, str(path), path, "0" * 64, "", (), 0, 0, problems)
    if w is None:
        w = walk(path)
    problems += w.problems
    digest, files, size = content_hash(path, w)
    return Fingerprint(shown, str(path), path, digest, w.digest(), w.sig, files, size, problems)
