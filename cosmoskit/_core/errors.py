"""The one exception type users see, and the exit codes of the command line."""

from __future__ import annotations

# Exit codes (README, "Exit codes"): what a script can tell apart without reading the message.
EXIT_OK = 0
EXIT_ERROR = 1  # a CosmoskitError: bad input, configuration, the environment; or an internal error
EXIT_USAGE = 2  # the command line itself is wrong (unknown option, missing argument)
EXIT_RUNS_FAILED = 3  # the command ran, but some runs did not complete (failed, cancelled, blocked)
EXIT_INTERRUPTED = 130  # Ctrl-C


class CosmoskitError(Exception):
    """An error the user can act on.

    The CLI prints ``str(error)`` as one line and exits with ``exit_code`` (1 unless
    said otherwise; set ``COSMOSKIT_RAISE_ERRORS=1`` to see the traceback instead).
    Plugins raise it for anything caused by input, configuration or the environment;
    any other exception is a bug and is reported as one.
    """

    def __init__(
        self, message: str, *, hint: str | None = None, input_problem: bool = False, exit_code: int = EXIT_ERROR
    ) -> None:
        self.message = message
        self.hint = hint
        # True when the user's input (a missing or changed video …) caused it: retrying cannot help.
        self.input_problem = input_problem
        self.exit_code = exit_code
        super().__init__(message if not hint else f"{message} ({hint})")
