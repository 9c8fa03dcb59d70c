"""Where dropped folders go: ``processed/`` (or marked in place), ``rejected/`` with ``REJECTED.txt``.

Both live inside the drop folder, on its filesystem, so every move is one atomic rename.  Errors
(the folder vanished, a rename refused) are raised for the watcher to report.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from cosmoskit import api
from cosmoskit_dropfolder import layout
from cosmoskit_dropfolder.contents import Fingerprint
from cosmoskit_dropfolder.intake import PROCESSED, REJECTED

INGESTED_FILE = "INGESTED.txt"
REJECTED_FILE = "REJECTED.txt"

After = Literal["move", "mark"]


def _stamp() -> str:
    return api.now()[:19].replace("T", " ")


class Folders:
    def __init__(self, root: Path, after: After) -> None:
        self.root = root
        self.after = after
        self.processed = root / PROCESSED
        self.rejected = root / REJECTED
        self._planned: set[str] = set()   # destinations claimed but not moved into yet

    def make(self) -> None:
        for d in (self.root, self.processed, self.rejected):
            d.mkdir(parents=True, exist_ok=True)

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    # ------------------------------------------------------------ destinations
    def unique(self, parent: Path, name: str) -> Path:
        """``parent/name``, or ``name.2``, ``name.3`` … : free on disk and not planned for another folder."""
        candidate, n = parent / name, 1
        while os.path.lexists(candidate) or str(candidate) in self._planned:
            n += 1
            candidate = parent / f"{name}.{n}"
        self._planned.add(str(candidate))
        return candidate

    def plan_dest(self, fp: Fingerprint) -> Path:
        """Where a claimed folder will live (recorded in its claim before it moves)."""
        if self.after == "mark":
            return Path(fp.path)
        return self.unique(self.processed, fp.name)

    # ------------------------------------------------------------ moves
    def take(self, fp: Fingerprint, dest: Path) -> None:
        """Move a claimed folder to its destination (nothing to do when it is marked in place)."""
        if dest != fp.folder:
            self.processed.mkdir(parents=True, exist_ok=True)
            os.rename(fp.folder, dest)
            self._planned.discard(str(dest))

    def finish_move(self, fp: Fingerprint, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(fp.folder, dest)

    def reject(self, fp: Fingerprint, folder: Path, lines: list[str]) -> Path:
        """Write ``REJECTED.txt`` (one line per problem) into ``folder`` and move it to ``rejected/``;
        a dropped link is moved as it is (nothing is written through it)."""
        dest = self.unique(self.rejected, fp.name)
        self._planned.discard(str(dest))
        if not folder.is_symlink():
            text = [f"Rejected by cosmoskit watch on {_stamp()} UTC (dropped as {fp.path}):", *lines, "",
                    "Fix the problems and drop the folder into the drop folder again."]
            (folder / REJECTED_FILE).write_text("\n".join(text) + "\n", encoding="utf-8", errors="replace")
        self.rejected.mkdir(parents=True, exist_ok=True)
        os.rename(folder, dest)
        return dest

    # ------------------------------------------------------------ markers
    def mark_ingested(self, folder: Path, prompt_id: str | None, run_ids: list[str], content_hash: str | None,
                      dropped: str, *, runs: list[dict[str, Any]] | None = None,
                      prompt: dict[str, Any] | None = None) -> None:
        """``INGESTED.txt``: the prompt, its runs and weights, and the content hash (written atomically)."""
        lines = [f"Ingested by cosmoskit watch on {_stamp()} UTC.",
                 f"prompt: {prompt_id}" + (f" ({prompt['name']})" if prompt else ""),
                 f"runs: {', '.join(run_ids) or '-'}"]
        for r in runs or []:
            w = ",".join(f"{k}={v:g}" for k, v in r["params"]["weights"].items())
            lines.append(f"  {r['id']}: weights {w}, priority {r['priority']}")
        lines += [f"dropped as: {dropped}", f"content sha256: {content_hash}",
                  "Changing this folder does not queue it again; copy it to a new folder to queue new work."]
        tmp = folder / f"{layout.OWN_PREFIX}-{INGESTED_FILE}.tmp"
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="replace")
        os.replace(tmp, folder / INGESTED_FILE)

    def clear_rejection(self, folder: Path) -> None:
        """A ``REJECTED.txt`` from an earlier drop of a folder now queued is stale."""
        stale = folder / REJECTED_FILE
        if stale.exists():
            stale.unlink()
