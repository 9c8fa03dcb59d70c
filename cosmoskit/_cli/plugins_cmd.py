from __future__ import annotations

import typer


def plugins(json_: bool = typer.Option(False, "--json", help="Output as JSON.")) -> None:
    """List loaded plugins: package, version, hooks and what each contributes."""
    from cosmoskit._cli import output
    from cosmoskit._core import plugins as plugins_mod

    found = plugins_mod.describe()
    if json_:
        output.emit_json(found)
        return
    if not found:
        output.say(
            "No plugins loaded." + (" (COSMOSKIT_LOAD_PLUGINS is empty)" if plugins_mod._wanted() == set() else "")
        )
        return
    rows = []
    for p in found:
        gives = "; ".join(
            f"{k}: {', '.join(p[k])}" for k in ("operations", "strategies", "executors", "commands") if p.get(k)
        )
        rows.append((p["name"], f"{p['package'] or '?'} {p['version'] or ''}".strip(), ", ".join(p["hooks"]), gives))
    output.table(None, ("plugin", "package", "hooks", "contributes"), rows)
