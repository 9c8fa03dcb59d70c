"""The CPU emulator of the Cosmos models cosmoskit drives (Transfer 1, Transfer 2.5, Cosmos 3).

No GPU, no weights, no diffusion: each run takes the model's real command line, checks it
as the model would, and writes the model's output layout with real, cheap mp4s made by
ffmpeg, each labelled "COSMOS EMULATOR".  Nothing it writes is a model output.

Modules: ``dispatch`` (argv -> model), ``common`` (label, knobs, ffmpeg media), ``torchrun``,
``timing`` (simulated durations, pure functions), ``modellog`` and ``validation`` (the
loguru log lines and pydantic errors of the newer models), and one module per model:
``transfer1``, ``transfer25``, ``cosmos3``.  docs/emulator.md describes it all.

The package reaches a GPU host as one file: ``cosmoskit._core.remotefiles`` bundles it into
a deterministic zipapp (``python cosmos_emulator.pyz ARGV...``).  In the source tree (and
an installed wheel) ``remote/cosmos_emulator.py`` runs it by path.
"""
