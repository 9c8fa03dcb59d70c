"""The ``cosmoskit`` command line.

Start-up is kept small: command modules import their heavy dependencies
(tinydb, rich tables, paramiko …) inside the command functions.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from cosmoskit import __version__
from cosmoskit._core import context
from cosmoskit._core.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CosmoskitError,
    from_os_error,
)

app = typer.Typer(
    name="cosmoskit",
    help="Drive NVIDIA Cosmos Transfer on GPU hosts: prompts, runs, batches, executors, a drop folder.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion; ids and names come from cosmoskit._cli.complete
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cosmoskit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    config: Optional[str] = typer.Option(
        None, "--config", "-c", help="Path to cosmoskit.yaml (else COSMOSKIT_CONFIG, else found upwards from here)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Drive NVIDIA Cosmos Transfer on GPU hosts: prompts, runs, batches, executors, a drop folder."""
    context.set_config_option(config)


def _add_core_commands() -> None:
    from cosmoskit._cli import (
        batch_cmds,
        calibrate_cmd,
        config_cmd,
        init_cmd,
        ledger_cmd,
        plugins_cmd,
        prompt_cmd,
        queue_cmd,
        run_cmd,
        status_cmd,
        transfer_cmd,
        verify_cmd,
        worker_cmd,
    )

    app.add_typer(prompt_cmd.app, name="prompt")
    app.add_typer(run_cmd.app, name="run")
    app.add_typer(queue_cmd.app, name="queue")
    app.add_typer(config_cmd.app, name="config")
    app.add_typer(ledger_cmd.app, name="ledger")
    app.command("plugins")(plugins_cmd.plugins)
    app.command("verify")(verify_cmd.verify)
    app.command("logs")(batch_cmds.logs)
    app.command("cancel")(batch_cmds.cancel)
    app.command("attach")(batch_cmds.attach)
    app.command("kill")(batch_cmds.kill)
    app.command("transfer")(transfer_cmd.transfer)
    app.command("init")(init_cmd.init)
    app.command("worker")(worker_cmd.worker)
    app.command("status")(status_cmd.status)
    app.command("calibrate")(calibrate_cmd.calibrate)


def _command_names() -> set[str]:
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    names |= {g.name or "" for g in app.registered_groups}
    return names


def _add_plugin_commands() -> None:
    from cosmoskit._core import plugins

    plugins.load_plugins()
    for impl in plugins.pm.hook.register_commands.get_hookimpls():
        before = _command_names()
        impl.function(app=app)
        plugins.record_commands(impl.plugin_name, sorted(_command_names() - before))


def build() -> typer.Typer:
    if not app.registered_groups:
        _add_core_commands()
        _add_plugin_commands()
    return app


def report_error(exc: CosmoskitError) -> None:
    message = str(exc).replace("\n", " ")
    sys.stderr.write(f"Error: {message}\n")


def truthy(name: str) -> bool:
    """An environment switch: 1, true, yes, on (any case) are on; anything else, or unset, is off."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


INTERRUPTED = (
    "Interrupted. A batch already started keeps running where it runs: `cosmoskit attach` follows it "
    "again (a running worker adopts it); runs that had not started are back in the queue (`cosmoskit queue list`)."
)


def main(argv: list[str] | None = None) -> None:
    """The console script: every outcome is one line on stderr and a documented exit code
    (0 done, 1 error, 2 usage, 3 runs that did not complete, 130 interrupted)."""
    from typer._click import exceptions as click_errors

    raise_errors = truthy("COSMOSKIT_RAISE_ERRORS")
    try:
        build()
        # not standalone: usage errors and Ctrl-C come back here, to be said in one line
        code = app(args=argv, prog_name="cosmoskit", standalone_mode=False)
    except CosmoskitError as exc:
        if raise_errors:
            raise
        report_error(exc)
        sys.exit(exc.exit_code)
    except click_errors.NoArgsIsHelpError as exc:
        sys.stdout.write(exc.format_message() + "\n")  # a group named alone: its help, as before
        sys.exit(EXIT_USAGE)
    except click_errors.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "cosmoskit"
        message = " ".join(exc.format_message().split())
        sys.stderr.write(f"Error: {message} (see `{where} --help`)\n")
        sys.exit(EXIT_USAGE)
    except click_errors.ClickException as exc:
        sys.stderr.write(f"Error: {' '.join(exc.format_message().split())}\n")
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("Aborted.\n")
        sys.exit(EXIT_ERROR)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        if raise_errors:
            raise
        sys.stderr.write(INTERRUPTED + "\n")
        sys.exit(EXIT_INTERRUPTED)
    except OSError as exc:
        if raise_errors:
            raise
        report_error(from_os_error(exc))
        sys.exit(EXIT_ERROR)
    except Exception as exc:
        # A bug, not bad input: one line by default, the traceback on request.
        if raise_errors:
            raise
        sys.stderr.write(
            f"Error: internal error: {exc.__class__.__name__}: {exc} "
            f"(set COSMOSKIT_RAISE_ERRORS=1 to see the traceback)\n"
        )
        sys.exit(EXIT_ERROR)
    if code == EXIT_INTERRUPTED:  # Ctrl-C outside any command that says more
        sys.stderr.write(INTERRUPTED + "\n")
    sys.exit(code if isinstance(code, int) else EXIT_OK)
