"""The one exception type users see."""

from __future__ import annotations


class CosmoskitError(Exception):
    """An error the user can act on.

    The CLI prints ``str(error)`` as one line and exits with code 1 (set
    ``COSMOSKIT_RAISE_ERRORS=1`` to see the traceback instead).  Plugins raise
    it for anything caused by input, configuration or the environment; any
    other exception is a bug and is reported as one.
    """

    def __init__(self, message: str, *, hint: str | None = None, input_problem: bool = False) -> None:
        self.message = message
        self.hint = hint
        # True when the user's input (a missing or changed video …) caused it: retrying cannot help.
        self.input_problem = input_problem
        super().__init__(message if not hint else f"{message} ({hint})")
