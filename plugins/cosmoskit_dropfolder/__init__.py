"""Bundled plugin: ``cosmoskit prepare`` (frame sequences -> prompt videos) and ``cosmoskit watch`` (drop folder).

See docs/dropfolder.md.  Only the hook lives here: watchdog, ffmpeg and the ledger are imported
by the commands when they run, so ``cosmoskit --help`` stays fast.
"""
from __future__ import annotations

import cosmoskit


@cosmoskit.hookimpl
def register_settings(register):
    from cosmoskit_dropfolder.settings import WATCH

    register(WATCH)


@cosmoskit.hookimpl
def register_tables(register):
    from cosmoskit_dropfolder.settings import INGEST_TABLE

    register(INGEST_TABLE)


@cosmoskit.hookimpl
def register_commands(app):
    from cosmoskit_dropfolder import commands

    commands.register(app)
