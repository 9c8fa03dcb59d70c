"""The files cosmoskit runs on a host: the launcher and the CPU emulator (package ``cosmoskit_remote``).

The emulator is a package (``remote/emulator/``: one module per model), but a host gets ONE
file: the package bundled as a zipapp that ``python3 cosmos_emulator.pyz ARGV...`` runs.  The
bundle is deterministic — sources in sorted order, a fixed timestamp and mode, stored without
compression so the bytes depend on the sources alone and not on the zlib build — so the same
sources give the same bytes, and the SSH executor, which names a shipped tool by its hash,
ships each version once.  ``EMULATOR`` is that bundle's path, built on first use and cached.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

from cosmoskit_remote import EMULATOR_PACKAGE, LAUNCHER, start_command

__all__ = ["EMULATOR", "LAUNCHER", "emulator_bundle", "emulator_bundle_bytes", "start_command"]  # noqa: F822 - EMULATOR comes from __getattr__

BUNDLE_NAME = "cosmos_emulator.pyz"
_SHEBANG = b"#!/usr/bin/env python3\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_MAIN = b'''"""cosmos-emulator bundle: remote/emulator/ of cosmoskit as one file (docs/emulator.md).
Every video it writes is labelled COSMOS EMULATOR and is NOT a model output."""
import sys

from emulator.dispatch import main

sys.exit(main())
'''


def emulator_sources(package: Path = EMULATOR_PACKAGE) -> list[tuple[str, bytes]]:
    """(name in the bundle, bytes) of every module of the emulator package, sorted by name."""
    files = sorted(p for p in package.glob("*.py"))
    if not any(p.name == "dispatch.py" for p in files):
        raise FileNotFoundError(f"the emulator package is incomplete or missing: {package}")
    return [(f"emulator/{p.name}", p.read_bytes()) for p in files]


def emulator_bundle_bytes(sources: list[tuple[str, bytes]] | None = None) -> bytes:
    """The zipapp's bytes: a shebang, then a zip whose entries carry no time, owner or order of their own."""
    buf = io.BytesIO()
    buf.write(_SHEBANG)
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in [("__main__.py", _MAIN), *sorted(sources if sources is not None else emulator_sources())]:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o100644 << 16
            info.create_system = 3  # unix, whatever OS builds it
            z.writestr(info, data)
    return buf.getvalue()


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cosmoskit"


def emulator_bundle(cache: Path | None = None) -> Path:
    """The bundle's path, ``<cache>/emulator/<sha256[:16]>/cosmos_emulator.pyz``, written once per version.

    The folder is named by the content, so a file once written never changes (a run that
    uses it while the sources change keeps its own version) and writers racing each other
    write the same bytes.  An unwritable cache falls back to the temporary folder."""
    data = emulator_bundle_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    for root in [cache] if cache is not None else [_cache_root(), Path(tempfile.gettempdir()) / "cosmoskit-cache"]:
        path = root / "emulator" / digest / BUNDLE_NAME
        try:
            if not (path.is_file() and path.read_bytes() == data):
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bundle-")
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            return path
        except OSError:
            if cache is not None:
                raise
    raise OSError("cannot write the emulator bundle in any cache folder")


_built: Path | None = None


def __getattr__(name: str) -> Path:
    # EMULATOR is built when first asked for (PEP 562), not when cosmoskit imports this module.
    global _built
    if name == "EMULATOR":
        if _built is None or not _built.is_file():
            _built = emulator_bundle()
        return _built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
