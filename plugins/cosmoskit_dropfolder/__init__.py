"""Bundled plugin cosmoskit_dropfolder (in progress)."""
