"""Measured depth (OpenEXR, 16-bit PNG) -> the grey depth picture Cosmos reads.

Cosmos Transfer's depth control is trained on Depth Anything output: *relative inverse depth*,
nearest = white (255), far and sky = black.  Renderers write *distance* instead (a ``Z`` pass:
larger = farther; often ``inf``, ``NaN``, ``0`` or Blender's 1e10 where no surface was hit).  So:

- **Sky** (no depth): NaN, ±inf, and for distance also ``<= 0`` and ``>= SKY_DISTANCE``.  It becomes
  black, like the sky in Depth Anything output, and never takes part in choosing the range.
- **Range, per sequence, never per frame**: the ``LOW``-th and ``HIGH``-th percentiles of every
  valid value of *the whole sequence* (a deterministic sample of each frame), so one distance is one
  grey level in every frame and the depth does not flicker as objects come and go; a few stray
  pixels (a fleck of geometry at the camera, a far-away tree) do not squeeze the rest.
- **Mapping**: distance d -> (1/d - 1/far) / (1/near - 1/far): inverse depth, like Depth Anything,
  so near detail keeps its grey levels.  ``mode="inverse"`` is for frames that already hold a
  nearer-is-larger quantity (disparity, reversed Z, a Depth Anything map saved at 16 bits): mapped
  linearly, low -> black, high -> white.  Values outside the range are clipped.
- **Precision**: the arithmetic is float64 on the source values (16-bit integers or floats); the
  result is rounded to 8 bits once, for the encode.

All of it is pure functions of numpy arrays: the tests give tables of values and expected greys.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

MODES = ("distance", "inverse")
SKY_DISTANCE = 1e9      # Blender writes 1e10 (and others 3.4e38) where no surface was hit: no real scene is that deep
LOW, HIGH = 0.5, 99.5   # percentiles that become white and black (distance) / black and white (inverse)
SAMPLES_PER_FRAME = 65536
VERSION = 1             # bump when the mapping changes: depth videos made by an older one are encoded again


@dataclass(frozen=True)
class DepthRange:
    """What the whole sequence maps from: ``near`` -> 255, ``far`` -> 0 (source units)."""

    mode: str
    near: float
    far: float
    valid: int          # sampled values that have a depth
    sky: int            # sampled values that are sky (no depth)

    @property
    def sky_fraction(self) -> float:
        total = self.valid + self.sky
        return self.sky / total if total else 0.0

    def describe(self) -> str:
        def num(v: float) -> str:
            return f"{v:.4g}"

        if self.valid == 0:
            return "no pixel has a depth (all sky): the depth video is black"
        sky = f"; {self.sky_fraction:.1%} of pixels are sky (no depth), shown black" if self.sky else ""
        if self.mode == "distance":
            return (f"read as distance (larger = farther), mapped for the whole sequence as inverse depth: "
                    f"{num(self.near)} and nearer -> white, {num(self.far)} and farther -> black{sky}")
        return (f"read as inverse depth (larger = nearer), mapped for the whole sequence: {num(self.far)} and "
                f"below -> black, {num(self.near)} and above -> white{sky}")


def sky_mask(values: np.ndarray, mode: str) -> np.ndarray:
    """True where a value holds no depth."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values)
        if mode == "distance":
            bad |= (values <= 0) | (values >= SKY_DISTANCE)
    return bad


def sample(values: np.ndarray, limit: int = SAMPLES_PER_FRAME) -> np.ndarray:
    """A deterministic, evenly spread sample of a frame (every k-th pixel both ways), flattened."""
    import math

    h, w = values.shape[:2]
    step = max(1, math.ceil(math.sqrt(h * w / limit)))
    return values[::step, ::step].ravel()


def choose_range(samples: Iterable[np.ndarray], mode: str) -> DepthRange:
    """The sequence's range from the samples of all its frames (see the module's docstring)."""
    import numpy as np

    if mode not in MODES:
        raise ValueError(f"depth mode {mode!r}")
    parts = [np.asarray(s, dtype=np.float64).ravel() for s in samples]
    values = np.concatenate(parts) if parts else np.zeros(0)
    sky = sky_mask(values, mode)
    valid = values[~sky]
    if valid.size == 0:
        return DepthRange(mode, 0.0, 0.0, 0, int(sky.sum()))
    low, high = (float(v) for v in np.percentile(valid, [LOW, HIGH]))
    near, far = (low, high) if mode == "distance" else (high, low)
    return DepthRange(mode, near, far, int(valid.size), int(sky.sum()))


def to_grey(values: np.ndarray, rng: DepthRange) -> np.ndarray:
    """One frame's values -> uint8 grey levels (near = 255, far and sky = 0)."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    sky = sky_mask(v, rng.mode)
    out = np.zeros(v.shape, dtype=np.float64)
    if rng.valid:
        with np.errstate(divide="ignore", invalid="ignore"):
            if rng.mode == "distance":
                # 1/d is monotonic and finite here (sky, d <= 0, is masked); near < far, both > 0
                lo, hi = 1.0 / rng.far, 1.0 / rng.near
                x = 1.0 / v
            else:
                lo, hi = rng.far, rng.near
                x = v
            if hi > lo:
                out = (x - lo) / (hi - lo)
            else:  # every valid value is the same: all of it is the nearest thing there is
                out = np.ones(v.shape, dtype=np.float64)
    out = np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)
    out[sky] = 0.0
    return np.rint(out * 255.0).astype(np.uint8)
