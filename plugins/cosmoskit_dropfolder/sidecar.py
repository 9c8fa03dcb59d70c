"""The sidecar of a dropped folder: ``cosmos.yaml`` (or ``prompt.txt`` for the text alone).

```yaml
prompt: A rainy street at night, photoreal      # or `text:`
negative_prompt: cartoon, blurry                # or `negative:`
name: street-rain                               # prompt name (default: the folder's name)
fps: 30                                         # frame sequences only (default watch.fps)
priority: 5                                     # default watch.priority
depth: distance                                 # EXR/16-bit depth holds distance (default) or inverse depth
weights:                                        # one set, "vis=0.3,depth=0.5", or a list of sets:
  - {vis: 0.3, depth: 0.5}                      #   one queued run per set
  - {edge: 0.6, seg: 0.4}
  - {weights: {depth: 1.0}, seed: 7}            #   a set with its own run parameters
seed: 1                                         # num_steps, guidance, seed, sigma_max,
                                                # blur_strength, canny_threshold: for every run
num_steps: 20,35                                # seed, num_steps, guidance, sigma_max also sweep, as
                                                # on the command line: "1-8", "3,7.5", or a list
model: cosmos3-nano                             # the transfer model (default: default_model)
```
Anything left out comes from the configuration (``watch:``, ``default_model`` and the model's own
section: ``transfer:``, ``transfer2.5:``, ``cosmos3:``).  With a ``model:`` other than Transfer 1's,
each weight set is checked by that model's own rules (its controls and ranges), with its line.

Every problem of the sidecar is found in one reading — each unknown key, wrong type and value out
of range, as ``cosmos.yaml:LINE: what`` — so a typo never hides the next one, nor a problem of the
frames (``prepare`` reports them together).  :func:`check` is the pure decision, a table in the tests.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosmoskit_dropfolder.depthmap import MODES as DEPTH_MODES
from cosmoskit_dropfolder.layout import Problem

RUN_PARAMS = ("num_steps", "guidance", "seed", "sigma_max", "blur_strength", "canny_threshold")
KEYS = ("prompt", "text", "negative_prompt", "negative", "name", "fps", "priority", "depth", "weights", "model",
        *RUN_PARAMS)
RUN_KEYS = ("weights", "priority", *RUN_PARAMS)
SWEEPS = {"seed": int, "num_steps": int, "guidance": float, "sigma_max": float}  # keys that take value lists
MAX_RUNS = 64
OPERATION = "transfer"  # Transfer 1's operation: what a sidecar without `model:` is checked against
KIND = "transfer"  # a sidecar's `model:` names a model of this kind
# A stand-in prompt text while the sidecar has problems (see read()); never queued: prepare refuses the folder.
STAND_IN_TEXT = "(the sidecar has problems)"
_BAD_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")
_RANGE = re.compile(r"^\s*-?\d+\s*-\s*-?\d+\s*$")  # "1-8": a sweep of integers

Lines = Mapping[tuple[Any, ...], int]  # path of keys and list indices -> line number (1-based)


class SidecarError(Exception):
    """A broken sidecar or name: ``str(error)`` is one line; ``problems`` holds every problem."""

    def __init__(self, text: str, problems: list[Problem] | None = None) -> None:
        super().__init__(text)
        self.problems = problems or []


@dataclass
class Sidecar:
    text: str | None = None
    negative: str | None = None
    name: str | None = None
    fps: float | None = None
    priority: int | None = None
    depth: str | None = None                                   # "distance" or "inverse" (EXR/16-bit depth)
    model: str | None = None                                   # the transfer model (None: default_model)
    runs: list[dict[str, Any]] = field(default_factory=list)  # each: {"weights": …} plus per-run params
    params: dict[str, Any] = field(default_factory=dict)       # run parameters shared by every run
    axes: dict[str, list[Any]] = field(default_factory=dict)   # swept parameters: every combination per set
    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)      # what could not be read (values left out)
    prompt_given: bool = False  # a prompt was given, readable or not (or the file could not be read to tell)

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "negative_prompt": self.negative, "name": self.name, "fps": self.fps,
                "priority": self.priority, "depth": self.depth, "model": self.model, "runs": self.runs,
                "params": self.params, "axes": self.axes,
                "files": self.files}


def name_problem(name: str) -> str | None:
    """Why a prompt or folder name could reach outside its folder or break a log line (None: it is fine)."""
    if not name.strip():
        return "the name is empty"
    if _BAD_NAME.search(name) or name.strip() in (".", "..") or name.startswith(".."):
        return (f"the name {name!r} holds a path separator, '..' or a control character; names may not reach "
                f"outside the folder")
    if len(name) > 200:
        return "the name is longer than 200 characters"
    return None


def check_name(name: str, where: str) -> str:
    """A prompt or folder name that cannot reach outside its folder or break a log line."""
    problem = name_problem(name)
    if problem:
        raise SidecarError(f"{where}: {problem}")
    return name.strip()


# ---------------------------------------------------------------- reading the files
def read(folder: Path) -> Sidecar:
    """The folder's sidecar as far as it reads; a folder without one gives an empty Sidecar.

    Never raises for a broken sidecar: ``problems`` lists every problem and the values concerned
    are left out, so the caller reports them *with* the problems of the frames —
    :func:`cosmoskit_dropfolder.prepare.prepare` reads the sidecar's problems itself and refuses the
    folder.  A sidecar with problems and no usable prompt text gets :data:`STAND_IN_TEXT` as its
    text, so a caller that checks for missing text before calling ``prepare`` does not report
    "no prompt text" in place of the real problems.  Use :func:`parse` to have the problems apart.
    """
    side, problems = parse(folder)
    side.problems = problems
    if problems and side.text is None:
        side.text = STAND_IN_TEXT
    return side


def parse(folder: Path, fields: Mapping[str, Any] | None = None) -> tuple[Sidecar, list[Problem]]:
    """(the sidecar as far as it reads, every problem of it).  ``fields``: run parameter checks (default:
    the transfer operation's own)."""
    problems: list[Problem] = []
    yamls = [n for n in ("cosmos.yaml", "cosmos.yml") if (folder / n).is_file()]
    side = Sidecar()
    if len(yamls) > 1:
        problems.append(Problem(None, "cosmos.yaml and cosmos.yml: keep one"))
    if yamls:
        where = yamls[0]
        side.files.append(where)
        raw, problem = _read_text(folder / where)
        if problem:
            problems.append(Problem(where, problem))
            side.prompt_given = True
        else:
            side, found = parse_text(raw or "", where, fields)
            side.files = [where]
            problems += found
    text_file = folder / "prompt.txt"
    if text_file.is_file():
        side.files.append(text_file.name)
        side.prompt_given = True
        body, problem = _read_text(text_file)
        if problem:
            problems.append(Problem(text_file.name, problem))
        elif not (body or "").strip():
            problems.append(Problem(text_file.name, "the file is empty"))
        elif side.text is not None or any(p.text.startswith(("prompt:", "text:")) for p in problems):
            problems.append(Problem(text_file.name, f"the prompt is also given in {yamls[0]}; keep one"))
        else:
            side.text = (body or "").strip()
    if not side.runs:
        side.runs = [{}]  # no weights given: one run with the configured weights
    return side, problems


def _read_text(path: Path) -> tuple[str | None, str | None]:
    try:
        return path.read_text(encoding="utf-8"), None
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"


def parse_text(raw: str, where: str = "cosmos.yaml",
               fields: Mapping[str, Any] | None = None) -> tuple[Sidecar, list[Problem]]:
    """A ``cosmos.yaml`` from its text: YAML with the line of every key, then :func:`check`."""
    import yaml
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    loader = yaml.SafeLoader(raw)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return Sidecar(prompt_given=True), [Problem(where, f"broken YAML: {problem}", mark.line + 1 if mark else None)]
    finally:
        loader.dispose()

    lines: dict[tuple[Any, ...], int] = {}
    dupes: list[Problem] = []

    def walk(n: Any, path: tuple[Any, ...]) -> None:
        if isinstance(n, MappingNode):
            for k, v in n.value:
                key = k.value if isinstance(k, ScalarNode) else None
                line = k.start_mark.line + 1
                if (*path, key) in lines:
                    label = ".".join(str(p) for p in (*path, key) if not isinstance(p, int))
                    dupes.append(Problem(where, f"{label}: given twice (also on line {lines[(*path, key)]}); "
                                                f"keep one", line))
                    continue
                lines[(*path, key)] = line
                walk(v, (*path, key))
        elif isinstance(n, SequenceNode):
            for i, item in enumerate(n.value):
                lines[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))

    if node is not None:
        lines[()] = node.start_mark.line + 1
        walk(node, ())
    if data is None:
        data = {}
    if isinstance(data, str):  # a file holding only the prompt text
        data = {"prompt": data}
        lines[("prompt",)] = lines.get((), 1)
    side, problems = check(data, where, lines, fields)
    return side, sorted(dupes + problems, key=lambda p: p.at or 0)  # in the order of the file


# ---------------------------------------------------------------- the decision
def transfer_models() -> dict[str, str]:
    """Each loaded transfer model and the operation that runs it (``transfer2.5`` -> ``transfer2.5`` …)."""
    from cosmoskit import api

    out = {}
    for name in api.operation_names():
        cls = api.operation_class(name)
        if cls.kind_name() == KIND:
            out[cls.model or name] = name
    return out


def run_param_fields(model: str | None = None) -> dict[str, Any]:
    """The queued operation's own field definitions (types, ranges, choices), or none if it is not there;
    with a ``model`` that model's operation's, its ``weights`` field included."""
    from cosmoskit import api
    from cosmoskit.api import CosmoskitError

    try:
        name = transfer_models().get(model, "") if model is not None else OPERATION
        cls = api.operation_class(name)
    except CosmoskitError:
        return {}
    options = cls.parameter_schema() or {}
    wanted = (*RUN_PARAMS, "weights") if model is not None else RUN_PARAMS
    return {k: f for k, f in options.items() if k in wanted}


def check(data: Any, where: str = "cosmos.yaml", lines: Lines | None = None,
          fields: Mapping[str, Any] | None = None) -> tuple[Sidecar, list[Problem]]:
    """The sidecar a parsed ``cosmos.yaml`` gives, and every problem of it (each with its line)."""
    lines = lines or {}
    side = Sidecar()
    problems: list[Problem] = []

    def at(*path: Any) -> int | None:
        while path and tuple(str(p) if not isinstance(p, int) else p for p in path) not in lines:
            path = path[:-1]
        return lines.get(tuple(str(p) if not isinstance(p, int) else p for p in path))

    def bad(text: str, *path: Any) -> None:
        problems.append(Problem(where, text, at(*path)))

    if not isinstance(data, dict):
        bad(f"must be a mapping of keys (prompt:, weights: …), not {type(data).__name__}")
        side.prompt_given = True  # cannot tell
        return side, problems
    side.prompt_given = "prompt" in data or "text" in data
    for key in data:
        if key not in KEYS:
            bad(f"unknown key {str(key)!r} ({_suggest(str(key), KEYS)})", key)
    if "prompt" in data and "text" in data:
        bad("both prompt: and text: given; keep one", "text")
    elif "prompt" in data or "text" in data:
        key = "prompt" if "prompt" in data else "text"
        text, problem = _text(data[key])
        if problem:
            bad(f"{key}: {problem}", key)
        side.text = text
    if "negative_prompt" in data and "negative" in data:
        bad("both negative_prompt: and negative: given; keep one", "negative")
    else:
        for key in ("negative_prompt", "negative"):
            if data.get(key) is not None:
                text, problem = _text(data[key])
                if problem:
                    bad(f"{key}: {problem}", key)
                side.negative = text
    if data.get("name") is not None:
        name = data["name"]
        if isinstance(name, bool) or not isinstance(name, (str, int)):
            bad(f"name: must be text, not {name!r}", "name")
        elif problem := name_problem(str(name)):
            bad(f"name: {problem}", "name")
        else:
            side.name = str(name).strip()
    if data.get("fps") is not None:
        fps = data["fps"]
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 1 <= fps <= 240:
            bad(f"fps must be a number from 1 to 240, not {fps!r}", "fps")
        else:
            side.fps = float(fps)
    if data.get("priority") is not None:
        side.priority, problem = _int(data["priority"])
        if problem:
            bad(f"priority {problem}", "priority")
    if data.get("model") is not None:
        model = data["model"]
        known = transfer_models() if fields is None else {}
        if not isinstance(model, str) or (fields is None and model not in known):
            bad(f"model: unknown model {model!r} (known: {', '.join(known) or 'none loaded'})", "model")
        else:
            side.model = model
            if fields is None:
                fields = run_param_fields(model)
    fields = run_param_fields() if fields is None else fields
    if data.get("depth") is not None:
        if data["depth"] in DEPTH_MODES:
            side.depth = data["depth"]
        else:
            bad(f"depth must be {' or '.join(DEPTH_MODES)}, not {data['depth']!r} (distance: larger values are "
                f"farther, as in a Z pass; inverse: larger values are nearer)", "depth")
    for key in [k for k in data if k in RUN_PARAMS]:  # in the file's order: the sweep's axes as written
        if data.get(key) is None:
            continue
        values, problem = _sweep(key, data[key], fields)
        if problem:
            bad(problem, key)
        elif len(values) == 1:
            side.params[key] = values[0]
        else:
            side.axes[key] = values
    weights = data.get("weights")
    if weights is None:
        side.runs = [{}]
        _expand(side, bad)
        return side, problems
    sets = weights if isinstance(weights, list) else [weights]
    if not sets:
        bad("weights: is an empty list", "weights")
    if len(sets) > MAX_RUNS:
        bad(f"{len(sets)} weight sets; at most {MAX_RUNS} per folder", "weights")
    runs: list[dict[str, Any]] = []
    for i, item in enumerate(sets, 1):
        path: tuple[Any, ...] = ("weights", i - 1) if isinstance(weights, list) else ("weights",)
        label = f"weights #{i}: " if isinstance(weights, list) else ""
        before = len(problems)
        if isinstance(item, dict) and "weights" in item:
            run: dict[str, Any] = {}
            for key, value in item.items():
                if key not in RUN_KEYS:
                    bad(f"{label}unknown key {str(key)!r} (a run takes {', '.join(RUN_KEYS)})", *path, key)
                elif key == "priority":
                    run["priority"], problem = _int(value)
                    if problem:
                        bad(f"{label}priority {problem}", *path, key)
                elif key != "weights" and value is not None:
                    run[key], problem = _param(key, value, fields)
                    if problem:
                        bad(f"{label}{problem}", *path, key)
            for text, key in weight_problems(item["weights"], fields.get("weights")):
                bad(f"{label}{text}", *path, "weights", *(() if key is None else (key,)))
            run["weights"] = _weights(item["weights"])
        else:
            for text, key in weight_problems(item, fields.get("weights")):
                bad(f"{label}{text}", *path, *(() if key is None else (key,)))
            run = {"weights": _weights(item)}
        if len(problems) == before:
            runs.append(run)
    side.runs = runs if runs and len(runs) == len(sets) else [{}]
    _expand(side, bad)
    return side, problems


def weight_problems(value: Any, model_field: Any = None) -> list[tuple[str, Any]]:
    """(problem, key it concerns) for one weight set: a mapping or ``'vis=0.3,depth=0.5'``.

    The same rules as the transfer operation applies when it queues the run (controls known, each
    weight 0..1, one above 0), checked here so that they are reported with every other problem.  With
    ``model_field`` (the ``weights`` field of a sidecar's ``model:``) that model's own rules decide."""
    from cosmoskit.api import CONTROL_NAMES

    if model_field is not None:
        if not (isinstance(value, str) and value.strip()) and not (isinstance(value, dict) and value):
            return [(f"weights must be a mapping like {{edge: 0.5, depth: 0.5}} or 'edge=0.5,depth=0.5', "
                     f"not {value!r}", None)]
        _, problem = model_field.validate(value if isinstance(value, str) else {str(k): v for k, v in value.items()})
        return [(f"weights {problem}", None)] if problem else []

    controls = ("vis", *(c for c in CONTROL_NAMES if c != "vis"))
    pairs: dict[Any, Any]
    if isinstance(value, str) and value.strip():
        pairs = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            if "=" not in part:
                return [(f"weight {part!r} needs the form name=value (e.g. vis=0.3)", None)]
            k, v = part.split("=", 1)
            pairs[k.strip()] = v.strip()
    elif isinstance(value, dict) and value:
        pairs = value
    else:
        return [(f"weights must be a mapping like {{vis: 0.3, depth: 0.5}} or 'vis=0.3,depth=0.5', not {value!r}",
                 None)]
    out: list[tuple[str, Any]] = []
    above = False
    for k, v in pairs.items():
        if k not in controls:
            out.append((f"unknown control {str(k)!r} ({_suggest(str(k), controls, 'controls')})", k))
            continue
        try:
            number = float(v) if not isinstance(v, bool) else float("nan")
        except (TypeError, ValueError):
            out.append((f"weight {k}={v!r} is not a number", k))
            continue
        if number != number:
            out.append((f"weight {k}={v!r} is not a number", k))
        elif not 0.0 <= number <= 1.0:
            out.append((f"weight {k}={v} is outside 0..1", k))
        above = above or number > 0
    if not out and not above:
        out.append(("at least one control weight must be above 0", None))
    return out


def _suggest(word: str, known: tuple[str, ...], what: str = "known") -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"{what}: {', '.join(known)}"


def _text(value: Any) -> tuple[str | None, str | None]:
    if not isinstance(value, str) or not value.strip():
        return None, f"must be non-empty text, not {value!r}"
    return value.strip(), None


def _int(value: Any) -> tuple[int | None, str | None]:
    if isinstance(value, bool) or not isinstance(value, int):
        return None, f"must be a whole number, not {value!r}"
    return value, None


def _sweep(key: str, value: Any, fields: Mapping[str, Any]) -> tuple[list[Any], str | None]:
    """One value, or for a sweepable key a list or the command line's forms ("1-8", "20,35"), each checked."""
    from cosmoskit import api

    listed = isinstance(value, str) and ("," in value or (SWEEPS.get(key) is int and _RANGE.match(value)))
    if key in SWEEPS and (isinstance(value, list) or listed):
        if isinstance(value, list):
            if not value:
                return [], f"{key}: is an empty list"
            raw: list[Any] = list(value)
            if len({repr(v) for v in raw}) != len(raw):
                return [], f"{key}: a value is given twice"
        else:
            try:
                raw = api.sweep_values(key, value, SWEEPS[key])
            except api.CosmoskitError as exc:
                return [], str(exc)
        checked = []
        for item in raw:
            one, problem = _param(key, item, fields)
            if problem:
                return [], problem
            checked.append(one)
        return checked, None
    one, problem = _param(key, value, fields)
    return [one], problem


def _expand(side: Sidecar, bad: Any) -> None:
    """Each weight set once per combination of the swept values (a set's own value wins over a swept one)."""
    from cosmoskit import api

    if side.axes:
        combos = api.sweep_variations(side.axes)
        side.runs = [{**{k: v for k, v in combo.items() if k not in run}, **run} for run in side.runs
                     for combo in combos]
    if side.axes and len(side.runs) > MAX_RUNS:
        bad(f"{len(side.runs)} runs (weight sets x swept values); at most {MAX_RUNS} per folder", "weights")


def _param(key: str, value: Any, fields: Mapping[str, Any]) -> tuple[Any, str | None]:
    spec = fields.get(key)
    if spec is None:  # the operation is not installed: it checks the value when the run is queued
        return value, None
    checked, problem = spec.validate(value)
    return checked, (f"{key} {problem}" if problem else None)


def _weights(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return value
