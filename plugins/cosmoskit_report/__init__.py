"""Bundled plugin cosmoskit_report (in progress)."""
