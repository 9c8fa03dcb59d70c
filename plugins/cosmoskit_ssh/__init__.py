"""Bundled plugin cosmoskit_ssh (in progress)."""
