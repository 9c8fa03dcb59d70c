"""Bundled plugin cosmoskit_slurm (in progress)."""
