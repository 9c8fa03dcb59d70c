"""Spec validation the way pydantic v2 does it, for the models whose specs are pydantic models.

Transfer 2.5 and Cosmos 3 validate every spec sample with pydantic; a bad sample prints
pydantic's own error text ("N validation errors for X", a ``loc`` line, the message with
``[type=…, input_value=…, input_type=…]`` and a link).  The emulator runs on hosts with only
the standard library, so this module re-implements the small part of pydantic's lax mode
those specs use: str, int, float, bool, literals, existing files, nested models, lists and
pairs, required and forbidden keys, with pydantic's messages and error types.

A schema is a dict ``field -> Field``; ``validate(schema, data, title)`` returns the cleaned
dict or raises ValidationError, whose ``str()`` is what pydantic prints.
"""

from __future__ import annotations

import os

_MISSING = object()
_BAD = object()


class Err:
    def __init__(self, loc, msg, type_, value, link=True):
        self.loc, self.msg, self.type, self.value, self.link = tuple(loc), msg, type_, value, link


class ValidationError(ValueError):
    def __init__(self, title, errors, version):
        self.title, self.errors, self.version = title, errors, version
        super().__init__(str(self))

    def __str__(self):
        n = len(self.errors)
        lines = [f"{n} validation error{'s' if n != 1 else ''} for {self.title}"]
        for e in self.errors:
            if e.loc:
                lines.append(".".join(str(p) for p in e.loc))
            lines.append(f"  {e.msg} [type={e.type}, input_value={input_repr(e.value)}, "
                         f"input_type={type(e.value).__name__}]")
            if e.link:
                lines.append(f"    For further information visit https://errors.pydantic.dev/{self.version}/v/{e.type}")
        return "\n".join(lines)


def input_repr(value):
    """pydantic's ``input_value``: the repr, cut in the middle past 50 characters."""
    text = repr(value)
    return text if len(text) <= 50 else text[:25] + "..." + text[-24:]


def _bound(x):
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _limits(value, loc, errors, gt=None, ge=None, le=None):
    if gt is not None and not value > gt:
        errors.append(Err(loc, f"Input should be greater than {_bound(gt)}", "greater_than", value))
        return _BAD
    if ge is not None and not value >= ge:
        errors.append(Err(loc, f"Input should be greater than or equal to {_bound(ge)}", "greater_than_equal", value))
        return _BAD
    if le is not None and not value <= le:
        errors.append(Err(loc, f"Input should be less than or equal to {_bound(le)}", "less_than_equal", value))
        return _BAD
    return value


# -- field types: each is f(value, loc, errors) -> cleaned value or _BAD ----------------------


def string():
    def check(v, loc, errors):
        if isinstance(v, str):
            return v
        errors.append(Err(loc, "Input should be a valid string", "string_type", v))
        return _BAD
    return check


def integer(gt=None, ge=None, le=None):
    def check(v, loc, errors):
        if isinstance(v, bool):
            out = int(v)
        elif isinstance(v, int):
            out = v
        elif isinstance(v, float):
            if not v.is_integer():
                errors.append(Err(loc, "Input should be a valid integer, got a number with a fractional part",
                                  "int_from_float", v))
                return _BAD
            out = int(v)
        elif isinstance(v, str):
            try:
                out = int(v.strip())
            except ValueError:
                errors.append(Err(loc, "Input should be a valid integer, unable to parse string as an integer",
                                  "int_parsing", v))
                return _BAD
        else:
            errors.append(Err(loc, "Input should be a valid integer", "int_type", v))
            return _BAD
        return _limits(out, loc, errors, gt, ge, le)
    return check


def number(gt=None, ge=None, le=None):
    def check(v, loc, errors):
        if isinstance(v, (bool, int, float)):
            out = float(v)
        elif isinstance(v, str):
            try:
                out = float(v.strip())
            except ValueError:
                errors.append(Err(loc, "Input should be a valid number, unable to parse string as a number",
                                  "float_parsing", v))
                return _BAD
        else:
            errors.append(Err(loc, "Input should be a valid number", "float_type", v))
            return _BAD
        return _limits(out, loc, errors, gt, ge, le)
    return check


_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


def boolean():
    def check(v, loc, errors):
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and not isinstance(v, bool) and v in (0, 1):
            return bool(v)
        if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
            return v.strip().lower() in _TRUE
        if isinstance(v, (str, int, float)):
            errors.append(Err(loc, "Input should be a valid boolean, unable to interpret input", "bool_parsing", v))
        else:
            errors.append(Err(loc, "Input should be a valid boolean", "bool_type", v))
        return _BAD
    return check


def literal(*choices):
    shown = [repr(c) for c in choices]
    expected = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]

    def check(v, loc, errors):
        for c in choices:
            if v == c and type(v) is type(c):
                return c
        errors.append(Err(loc, f"Input should be {expected}", "literal_error", v))
        return _BAD
    return check


def file_path():
    """pydantic.FilePath, resolved to an absolute path (relative to the current folder)."""
    def check(v, loc, errors):
        if not isinstance(v, str):
            errors.append(Err(loc, "Input is not a valid path", "path_type", v, link=False))
            return _BAD
        if not os.path.isfile(v):
            errors.append(Err(loc, "Path does not point to a file", "path_not_file", v, link=False))
            return _BAD
        return os.path.abspath(os.path.expanduser(v))
    return check


def list_of(item):
    def check(v, loc, errors):
        if not isinstance(v, (list, tuple)):
            errors.append(Err(loc, "Input should be a valid list", "list_type", v))
            return _BAD
        out = [item(x, (*loc, i), errors) for i, x in enumerate(v)]
        return _BAD if _BAD in out else out
    return check


def pair(item):
    def check(v, loc, errors):
        if not isinstance(v, (list, tuple)):
            errors.append(Err(loc, "Input should be a valid tuple", "tuple_type", v))
            return _BAD
        out = [item(x, (*loc, i), errors) for i, x in enumerate(v[:2])]
        for i in range(len(v), 2):
            errors.append(Err((*loc, i), "Field required", "missing", v))
            out.append(_BAD)
        if len(v) > 2:
            errors.append(Err(loc, "Tuple should have at most 2 items after validation, not "
                                   f"{len(v)}", "too_long", v))
            return _BAD
        return _BAD if _BAD in out else list(out)
    return check


def any_dict():
    def check(v, loc, errors):
        if isinstance(v, dict):
            return v
        errors.append(Err(loc, "Input should be a valid dictionary", "dict_type", v))
        return _BAD
    return check


def model(title, schema, forbid_extra=True, after=None):
    """A nested pydantic model; ``after(clean) -> error message or None`` is its after-validator."""
    def check(v, loc, errors):
        if not isinstance(v, dict):
            errors.append(Err(loc, f"Input should be a valid dictionary or instance of {title}", "model_type", v))
            return _BAD
        return _validate_into(schema, v, loc, errors, forbid_extra, after)
    return check


class Field:
    def __init__(self, check, default=_MISSING, nullable=False, custom=None):
        self.check, self.default, self.nullable, self.custom = check, default, nullable, custom

    @property
    def required(self):
        return self.default is _MISSING


def _validate_into(schema, data, loc, errors, forbid_extra, after):
    start = len(errors)
    out = {}
    for name, f in schema.items():
        if name not in data:
            if f.required:
                errors.append(Err((*loc, name), "Field required", "missing", data))
            else:
                out[name] = f.default
            continue
        value = data[name]
        if value is None and f.nullable:
            out[name] = None
            continue
        cleaned = f.check(value, (*loc, name), errors)
        if cleaned is not _BAD and f.custom is not None:
            message = f.custom(cleaned)
            if message:
                errors.append(Err((*loc, name), f"Value error, {message}", "value_error", value))
                cleaned = _BAD
        out[name] = cleaned
    if forbid_extra:
        for name, value in data.items():
            if name not in schema:
                errors.append(Err((*loc, name), "Extra inputs are not permitted", "extra_forbidden", value))
    if len(errors) > start:
        return _BAD
    if after is not None:
        message = after(out)
        if message:
            errors.append(Err(loc, f"Value error, {message}", "value_error", data))
            return _BAD
    return out


def validate(schema, data, title, version, forbid_extra=True, after=None):
    """Validate ``data`` against ``schema``; ``after(clean)`` plays a model_post_init/after-validator."""
    errors = []
    if not isinstance(data, dict):
        errors.append(Err((), f"Input should be a valid dictionary or instance of {title}", "model_type", data))
        raise ValidationError(title, errors, version)
    out = _validate_into(schema, data, (), errors, forbid_extra, after)
    if errors:
        raise ValidationError(title, errors, version)
    return out
