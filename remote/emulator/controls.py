"""Stand-in control videos and looks for the newer models (Transfer 1 keeps its own, frozen copy).

A control the real model computes on the fly (Canny edges, blur, depth, segmentation) is
drawn here with an ffmpeg filter of the input video; the "generated" video is the input
re-coloured by a look derived from the seed and weights.  Neither is a model output, and
both carry the COSMOS EMULATOR label.
"""

from __future__ import annotations

import hashlib
import json

STRENGTHS = ("very_low", "low", "medium", "high", "very_high")
_EDGE = {0: (0.02, 0.06), 1: (0.05, 0.12), 2: (0.08, 0.2), 3: (0.12, 0.3), 4: (0.18, 0.45)}
_BLUR = (1.5, 3.0, 5.0, 8.0, 12.0)


def control_filters(hint, strength, height):
    """(filters before scaling, filters after scaling) drawing a control-like video from the input.

    ``hint`` is the model's name for it (``vis`` in Transfer 2.5 is ``blur`` in Cosmos 3);
    ``strength`` is the preset (edge threshold or blur strength; Cosmos 3's blur adds "none")."""
    scale = max(1.0, height / 704.0)
    level = STRENGTHS.index(strength) if strength in STRENGTHS else 2
    if hint == "edge":
        lo, hi = _EDGE[level]
        return [f"edgedetect=low={lo}:high={hi}"], []
    if hint in ("vis", "blur"):
        if strength == "none":
            return [], []
        return [], [f"gblur=sigma={_BLUR[level] * scale:.3g}"]
    if hint == "depth":
        return [], ["format=gray", f"gblur=sigma={2 * scale:.3g}"]
    if hint == "seg":
        q = "trunc(val/86)*127"
        return [], [f"gblur=sigma={1.5 * scale:.3g}", f"lutrgb=r='{q}':g='{q}':b='{q}'"]
    if hint == "mask":
        return [], ["format=gray", "lutyuv=y='if(gt(val,110),255,0)'"]
    return [], []


def look(seed, weights, variation_token=None):
    """The colour look of an emulated output: a pure function of the seed, the normalised control
    weights and (with COSMOS_EMULATOR_VARIATION=1) the sample's own token."""
    total = sum(max(0.0, w) for w in weights.values())
    effective = {h: round(max(0.0, w) / max(1.0, total), 4) for h, w in weights.items()}
    token = f"{seed}|{json.dumps(effective, sort_keys=True)}"
    if variation_token is not None:
        token += f"|{variation_token}"
    digest = int(hashlib.sha256(token.encode("utf-8")).hexdigest()[:12], 16)
    eff_total = min(1.0, sum(effective.values()))
    out = {
        "hue": digest % 360,
        "saturation": round(0.55 + 0.9 * eff_total, 3),
        "contrast": round(1.0 + 0.35 * effective.get("edge", 0.0) + 0.2 * effective.get("seg", 0.0), 3),
        "brightness": round(((digest >> 10) % 17 - 8) / 100.0 - 0.08 * effective.get("depth", 0.0), 3),
    }
    filters = [f"hue=h={out['hue']}:s={out['saturation']}",
               f"eq=contrast={out['contrast']}:brightness={out['brightness']}"]
    return out, filters, effective
