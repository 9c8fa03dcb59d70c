"""A small typed schema for configuration sections, with errors that name the key, the file and the line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cosmoskit._core.errors import CosmoskitError

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "a mapping",
    list: "a list",
}


@dataclass
class Field:
    """One configuration key: its type, default and documentation."""

    type: type | tuple[type, ...]
    default: Any = None
    doc: str = ""
    required: bool = False
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], str | None] | None = None  # returns a problem or None
    nullable: bool = False

    def type_name(self) -> str:
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)

    def validate(self, value: Any) -> tuple[Any, str | None]:
        """Return (coerced value, problem)."""
        if value is None:
            if self.required:
                return None, "is required"
            return (None if self.nullable else self.default), None
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        if isinstance(value, bool) and bool not in types:
            return value, f"must be {self.type_name()}, not {value!r}"
        if not isinstance(value, types):
            if float in types and isinstance(value, int):
                value = float(value)
            else:
                return value, f"must be {self.type_name()}, not {type(value).__name__} {value!r}"
        if isinstance(value, str):
            from cosmoskit._core.textcheck import text_problem

            problem = text_problem(value, "its value")
            if problem:
                return value, problem.replace("its value ", "", 1)
        if self.choices is not None and value not in self.choices:
            return value, f"must be one of {', '.join(map(str, self.choices))}, not {value!r}"
        if self.check is not None:
            problem = self.check(value)
            if problem:
                return value, problem
        return value, None


def between(lo: float, hi: float) -> Callable[[Any], str | None]:
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}, not {v}"


def positive(v: Any) -> str | None:
    return None if v > 0 else f"must be above 0, not {v}"


def non_negative(v: Any) -> str | None:
    return None if v >= 0 else f"must be 0 or more, not {v}"


Section = dict[str, Any]  # name -> Field | Section


@dataclass
class Located:
    """Where keys came from: a file and a line per dotted key path."""

    file: str | None = None
    lines: dict[str, int] = field(default_factory=dict)

    def where(self, path: str) -> str:
        line = self.lines.get(path)
        parent = path
        while line is None and "." in parent:  # a missing key: point at the mapping that lacks it
            parent = parent.rsplit(".", 1)[0]
            line = self.lines.get(parent)
        if self.file and line:
            return f"{self.file}:{line}"
        return self.file or "configuration"


def error(located: Located, path: str, problem: str) -> CosmoskitError:
    return CosmoskitError(f"{located.where(path)}: {path} {problem}")


def apply(
    schema: Section, data: Any, located: Located, prefix: str = "", sources: dict[str, str] | None = None
) -> dict[str, Any]:
    """Validate ``data`` against ``schema``; fill defaults; record each key's source."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(located, prefix.rstrip(".") or "(top level)", f"must be a mapping, not {type(data).__name__}")
    out: dict[str, Any] = {}
    for key in data:
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise error(located, f"{prefix}{key}", f"is not a known key (known here: {known})")
    for key, spec in schema.items():
        path = f"{prefix}{key}"
        if isinstance(spec, dict):
            out[key] = apply(spec, data.get(key), located, f"{path}.", sources)
            continue
        present = key in data
        value, problem = spec.validate(data.get(key) if present else None)
        if problem:
            raise error(located, path, problem)
        out[key] = value
        if sources is not None:
            sources[path] = located.where(path) if present else "default"
    return out


def defaults(schema: Section) -> dict[str, Any]:
    return {k: defaults(v) if isinstance(v, dict) else v.default for k, v in schema.items()}
