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


def from_os_error(exc: OSError, path: object = None) -> CosmoskitError:
    """An operating-system error the user can act on, said in one line naming the path."""
    import errno

    where = path or exc.filename or "a file"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return CosmoskitError(
            f"no space left on the disk holding {where}",
            hint="free space there (old batches/ and store/ of this project can go), then run the command again; "
            "nothing acknowledged was lost",
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return CosmoskitError(f"not allowed to write {where}: {exc.strerror}")
    return CosmoskitError(f"{where}: {exc.strerror or exc}")
