"""``cosmoskit host trust``."""
from __future__ import annotations

from typing import Any

import typer


def _ssh_executor(name: str) -> Any:
    from cosmoskit import api
    from cosmoskit.api import CosmoskitError

    ex = api.engine().executor(name)
    if "host" not in ex.options or not ex.config.get("host"):
        raise CosmoskitError(f"executor {name!r} is a {ex.name} executor, not an SSH host")
    return ex


def register(app: typer.Typer) -> None:
    host_app = typer.Typer(help="SSH hosts: trust a host key.", no_args_is_help=True)

    @host_app.command("trust")
    def trust(
        name: str = typer.Argument(..., help="Executor name from cosmoskit.yaml."),
        replace: bool = typer.Option(False, "--replace",
                                     help="Replace a different key already recorded (a changed host key)."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Record without asking."),
        json_: bool = typer.Option(False, "--json", help="Output as JSON."),
    ) -> None:
        """Show a host's key fingerprint and record it in known_hosts (nothing is ever added silently)."""
        import os
        from pathlib import Path

        from cosmoskit import api
        from cosmoskit.api import CosmoskitError, confirm
        from cosmoskit_ssh import hostkeys

        ex = _ssh_executor(name)
        host, port = ex.config["host"], ex.config["port"]
        known = Path(os.path.expanduser(ex.config["known_hosts"]))
        key = hostkeys.scan(host, port, float(ex.settings.get("timeouts.connect_seconds")))
        fp = hostkeys.fingerprint(key)
        if not json_:
            api.say(f"{hostkeys.host_entry(host, port)} offers {key.get_name()} {fp}")
        if not yes:
            try:
                confirm(f"Trust this key for {name}?", False)
            except CosmoskitError:
                raise CosmoskitError(f"not recorded; compare {fp} with the host's own "
                                     f"`ssh-keygen -lf /etc/ssh/ssh_host_{key.get_name().split('-')[-1]}_key.pub`, "
                                     "then run again with --yes") from None
        result = hostkeys.trust(name, host, port, known, key, replace=replace)
        if json_:
            api.emit_json({"host": hostkeys.host_entry(host, port), "key_type": key.get_name(), "fingerprint": fp,
                              "known_hosts": str(known), "result": result})
        else:
            api.say(f"{result.capitalize()} in {known}.")

    app.add_typer(host_app, name="host")
