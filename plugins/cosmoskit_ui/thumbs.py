"""Thumbnails and previews, made on first request with the report's media cache and kept in the home.

``<home>/.cosmoskit-ui/media/<key>/`` holds ``thumb.jpg``, ``sheet.jpg`` and ``preview.mp4`` of one
video (cosmoskit_report.media: one ffmpeg pass, reused while the source is unchanged).  An input
video outside the project home is never served itself: the page plays its preview, made here.
"""
from __future__ import annotations

import threading
from pathlib import Path

from cosmoskit_report.media import FILES, Job, MediaCache
from cosmoskit_ui.files import UI_DIR


class Thumbs:
    def __init__(self, home: Path) -> None:
        self.out = home / UI_DIR
        self._lock = threading.Lock()  # one ffmpeg at a time: the machine runs the model's emulator too
        self._cache: MediaCache | None = None

    def file(self, key: str, src: Path, kind: str, frames: int | None = None) -> Path | None:
        """The ``kind`` (thumb, sheet, preview) of ``src`` under ``key``, made if needed; None if it cannot be."""
        if kind not in FILES:
            return None
        with self._lock:
            if self._cache is None:
                self._cache = MediaCache(self.out)
            job = Job(key, src, frames)
            self._cache.run([job], workers=1)
        if job.state not in ("made", "reused"):
            return None
        path = self.out / job.files[kind]
        return path if path.is_file() else None
