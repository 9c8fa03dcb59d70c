"""``--param KEY=VALUE`` strings into an operation's parameters, by the type its schema declares."""

from __future__ import annotations

from typing import Any

from cosmoskit._core.errors import CosmoskitError

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


def convert(key: str, field: Any, raw: str) -> Any:
    """One value as the field's type; structured values (``weights=vis=0.5,edge=0.5``) stay text for the
    operation's own ``validate`` to read, as it reads them from any other command."""
    types = field.type if isinstance(field.type, tuple) else (field.type,)
    if bool in types:
        if raw.lower() in TRUE:
            return True
        if raw.lower() in FALSE:
            return False
        raise CosmoskitError(f"--param {key}={raw}: must be true or false")
    if int in types:
        try:
            return int(raw)
        except ValueError:
            if float not in types:
                raise CosmoskitError(f"--param {key}={raw}: must be an integer") from None
    if float in types:
        try:
            return float(raw)
        except ValueError:
            raise CosmoskitError(f"--param {key}={raw}: must be a number") from None
    return raw


def parse_params(operation: str, schema: dict[str, Any], pairs: list[str]) -> dict[str, Any]:
    """``["num_steps=20", "weights=vis=1"]`` -> ``{"num_steps": 20, "weights": "vis=1"}``; unknown keys and
    repeated keys are errors that list what the operation takes."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise CosmoskitError(f"--param {pair!r} needs the form KEY=VALUE")
        if key not in schema:
            known = ", ".join(schema) or "none"
            raise CosmoskitError(
                f"{operation} has no parameter {key!r}; its parameters: {known}",
                hint="`cosmoskit run create --help` lists them",
            )
        if key in out:
            raise CosmoskitError(f"--param {key} is given twice")
        out[key] = convert(key, schema[key], raw.strip())
    return out
