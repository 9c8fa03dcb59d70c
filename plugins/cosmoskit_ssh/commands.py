"""``cosmoskit host trust`` and ``cosmoskit kill --host``."""
from __future__ import annotations

from typing import Any

import typer


def _ssh_executor(name: str) -> Any:
    from cosmoskit._core import context
    from cosmoskit._core.errors import CosmoskitError

    ex = context.engine().executor(name)
    if "host" not in ex.options or not ex.config.get("host"):
        raise CosmoskitError(f"executor {name!r} is a {ex.name} executor, not an SSH host")
    return ex


def register(app: typer.Typer) -> None:
    host_app = typer.Typer(help="SSH hosts: trust a host key.", no_args_is_help=True)

    @host_app.command("trust")
    def trust(
        name: str = typer.Argument(..., help="Executor name from cosmoskit.yaml."),
        replace: bool = typer.Option(False, "--replace", help="Replace a different key already recorded (a changed host key)."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Record without asking."),
        json_: bool = typer.Option(False, "--json", help="Output as JSON."),
    ) -> None:
        """Show a host's key fingerprint and record it in known_hosts (nothing is ever added silently)."""
        import os
        from pathlib import Path

        from cosmoskit._cli import output
        from cosmoskit._cli.common import confirm
        from cosmoskit._core.errors import CosmoskitError

        from cosmoskit_ssh import hostkeys

        ex = _ssh_executor(name)
        host, port = ex.config["host"], ex.config["port"]
        known = Path(os.path.expanduser(ex.config["known_hosts"]))
        key = hostkeys.scan(host, port, float(ex.settings.get("timeouts.connect_seconds")))
        fp = hostkeys.fingerprint(key)
        if not json_:
            output.say(f"{hostkeys.host_entry(host, port)} offers {key.get_name()} {fp}")
        if not yes:
            try:
                confirm(f"Trust this key for {name}?", False)
            except CosmoskitError:
                raise CosmoskitError(f"not recorded; compare {fp} with the host's own "
                                     f"`ssh-keygen -lf /etc/ssh/ssh_host_{key.get_name().split('-')[-1]}_key.pub`, "
                                     "then run again with --yes") from None
        result = hostkeys.trust(name, host, port, known, key, replace=replace)
        if json_:
            output.emit_json({"host": hostkeys.host_entry(host, port), "key_type": key.get_name(), "fingerprint": fp,
                              "known_hosts": str(known), "result": result})
        else:
            output.say(f"{result.capitalize()} in {known}.")

    app.add_typer(host_app, name="host")

    @app.command("kill")
    def kill(host: str = typer.Option(..., "--host", help="Executor name: stop every cosmoskit batch and cosmos_* container there."),
             json_: bool = typer.Option(False, "--json", help="Output as JSON.")) -> None:
        """Stop everything cosmoskit runs on one host; its runs become cancelled."""
        from cosmoskit._core import context, owner
        from cosmoskit._cli import output

        engine = context.engine()
        try:
            with context.ledger().transaction() as tx:
                batches = [b for b in tx.active_batches() if b["executor"] == host]
                for b in batches:
                    tx.update_batch(b["id"], stop_requested="cancelled", cancel_runs=[])
            stopped = engine.executor(host).kill_all()
            for b in batches:
                if not owner.alive(b.get("owner")) or owner.is_me(b.get("owner")):
                    engine.follow(b["id"], max_attempts=1)
        finally:
            engine.close()
        if json_:
            output.emit_json({"host": host, "stopped": stopped, "batches": [b["id"] for b in batches]})
        else:
            output.say(f"{host}: stopped {len(stopped)} launcher(s)/container(s); "
                       f"{len(batches)} batch(es) cancelled." if stopped or batches else f"{host}: nothing was running.")
