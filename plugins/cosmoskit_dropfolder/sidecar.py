"""The sidecar of a dropped folder: ``cosmos.yaml`` (or ``prompt.txt`` for the text alone).

```yaml
prompt: A rainy street at night, photoreal      # or `text:`
negative_prompt: cartoon, blurry                # or `negative:`
name: street-rain                               # prompt name (default: the folder's name)
fps: 30                                         # frame sequences only (default watch.fps)
priority: 5                                     # default watch.priority
weights:                                        # one set, "vis=0.3,depth=0.5", or a list of sets:
  - {vis: 0.3, depth: 0.5}                      #   one queued run per set
  - {edge: 0.6, seg: 0.4}
  - {weights: {depth: 1.0}, seed: 7}            #   a set with its own run parameters
seed: 1                                         # num_steps, guidance, seed, sigma_max,
                                                # blur_strength, canny_threshold: for every run
```
Anything left out comes from the configuration (``watch:`` and ``transfer:``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUN_PARAMS = ("num_steps", "guidance", "seed", "sigma_max", "blur_strength", "canny_threshold")
KEYS = ("prompt", "text", "negative_prompt", "negative", "name", "fps", "priority", "weights", *RUN_PARAMS)
MAX_RUNS = 64
_BAD_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


class SidecarError(Exception):
    """A broken sidecar: ``str(error)`` is one line naming the file."""


@dataclass
class Sidecar:
    text: str | None = None
    negative: str | None = None
    name: str | None = None
    fps: float | None = None
    priority: int | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)  # each: {"weights": …} plus per-run params
    params: dict[str, Any] = field(default_factory=dict)       # run parameters shared by every run
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "negative_prompt": self.negative, "name": self.name, "fps": self.fps,
                "priority": self.priority, "runs": self.runs, "params": self.params, "files": self.files}


def check_name(name: str, where: str) -> str:
    """A prompt or folder name that cannot reach outside its folder or break a log line."""
    if not name.strip():
        raise SidecarError(f"{where}: the name is empty")
    if _BAD_NAME.search(name) or name.strip() in (".", "..") or name.startswith(".."):
        raise SidecarError(f"{where}: the name {name!r} holds a path separator, '..' or a control character; "
                           f"names may not reach outside the folder")
    if len(name) > 200:
        raise SidecarError(f"{where}: the name is longer than 200 characters")
    return name.strip()


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SidecarError(f"{where} must be non-empty text, not {value!r}")
    return value.strip()


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SidecarError(f"{path.name}: not UTF-8 text") from None
    except OSError as exc:
        raise SidecarError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None


def read(folder: Path) -> Sidecar:
    """Parse the folder's sidecar files; a folder without any gives an empty Sidecar."""
    import yaml

    side = Sidecar()
    yamls = [folder / n for n in ("cosmos.yaml", "cosmos.yml") if (folder / n).is_file()]
    if len(yamls) > 1:
        raise SidecarError("cosmos.yaml and cosmos.yml: keep one")
    text_file = folder / "prompt.txt"
    if yamls:
        path = yamls[0]
        side.files.append(path.name)
        raw_text = _read_text(path)
        try:
            data = yaml.safe_load(raw_text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path.name}:{mark.line + 1}" if mark else path.name
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise SidecarError(f"{where}: broken YAML: {problem}") from None
        if data is None:
            data = {}
        if isinstance(data, str):  # a file holding only the prompt text
            data = {"prompt": data}
        if not isinstance(data, dict):
            raise SidecarError(f"{path.name}: must be a mapping of keys (prompt:, weights: …), not "
                               f"{type(data).__name__}")
        _apply(side, data, path.name)
    if text_file.is_file():
        side.files.append(text_file.name)
        body = _read_text(text_file).strip()
        if side.text is not None:
            raise SidecarError(f"prompt.txt: the prompt is also given in {yamls[0].name}; keep one")
        if not body:
            raise SidecarError("prompt.txt: the file is empty")
        side.text = body
    if not side.runs:
        side.runs = [{}]  # no weights given: one run with the configured weights
    return side


def _apply(side: Sidecar, data: dict[str, Any], where: str) -> None:
    unknown = [str(k) for k in data if k not in KEYS]
    if unknown:
        raise SidecarError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    if "prompt" in data and "text" in data:
        raise SidecarError(f"{where}: both prompt: and text: given; keep one")
    if "negative_prompt" in data and "negative" in data:
        raise SidecarError(f"{where}: both negative_prompt: and negative: given; keep one")
    for key in ("prompt", "text"):
        if key in data:
            side.text = _text(data[key], f"{where}: {key}")
    for key in ("negative_prompt", "negative"):
        if key in data and data[key] is not None:
            side.negative = _text(data[key], f"{where}: {key}")
    if data.get("name") is not None:
        side.name = check_name(str(data["name"]), f"{where}: name")
    if data.get("fps") is not None:
        fps = data["fps"]
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 1 <= fps <= 240:
            raise SidecarError(f"{where}: fps must be a number from 1 to 240, not {fps!r}")
        side.fps = float(fps)
    if data.get("priority") is not None:
        side.priority = _int(data["priority"], f"{where}: priority")
    for key in RUN_PARAMS:
        if data.get(key) is not None:
            side.params[key] = data[key]
    weights = data.get("weights")
    if weights is None:
        side.runs = [{}]
        return
    sets = weights if isinstance(weights, list) else [weights]
    if not sets:
        raise SidecarError(f"{where}: weights: is an empty list")
    if len(sets) > MAX_RUNS:
        raise SidecarError(f"{where}: {len(sets)} weight sets; at most {MAX_RUNS} per folder")
    for i, item in enumerate(sets, 1):
        label = f"{where}: weights" + (f" #{i}" if isinstance(weights, list) else "")
        if isinstance(item, dict) and "weights" in item:
            extra = [str(k) for k in item if k not in ("weights", "priority", *RUN_PARAMS)]
            if extra:
                raise SidecarError(f"{label}: unknown key {extra[0]!r} (a run takes weights, priority, "
                                   f"{', '.join(RUN_PARAMS)})")
            run = {k: v for k, v in item.items() if k != "priority"}
            if item.get("priority") is not None:
                run["priority"] = _int(item["priority"], f"{label}: priority")
            run["weights"] = _weights(item["weights"], label)
        else:
            run = {"weights": _weights(item, label)}
        side.runs.append(run)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SidecarError(f"{where} must be a whole number, not {value!r}")
    return value


def _weights(value: Any, where: str) -> Any:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, dict) and value:
        return {str(k): v for k, v in value.items()}
    raise SidecarError(f"{where} must be a mapping like {{vis: 0.3, depth: 0.5}} or 'vis=0.3,depth=0.5', "
                       f"not {value!r}")
