from __future__ import annotations

from typing import Any

import typer

app = typer.Typer(help="Show and check the configuration.", no_args_is_help=True)


def _effective(check_executors: bool) -> tuple[Any, dict[str, Any]]:
    from cosmoskit._core import context, plugins
    from cosmoskit._core.sections import owned_sections

    settings = context.settings()
    settings.check_sections()
    data = dict(settings.data)
    for name, section in owned_sections().items():
        data[name] = settings.section(name, section.fields)
    executors = {}
    for name in settings.executor_names():
        raw = settings.executor_config(name)
        if name not in settings.data["executors"] and raw["type"] not in plugins.get_executor_types():
            continue  # the implicit `local` entry, when cosmoskit_local is not loaded
        cls = plugins.get_executor_type(raw["type"])
        executors[name] = cls.validate_config(name, raw, settings) if check_executors else raw
    data["executors"] = executors
    return settings, data


@app.command("show")
def show(json_: bool = typer.Option(False, "--json", help="Output as JSON.")) -> None:
    """Print the effective settings and where each came from."""
    from cosmoskit._cli import output

    settings, data = _effective(check_executors=True)
    sources = dict(settings.sources)
    for name in data["executors"]:
        sources[f"executors.{name}"] = (
            settings.located.where(f"executors.{name}") if name in settings.data["executors"] else "default"
        )
    if json_:
        output.emit_json(
            {
                "config_file": str(settings.config_path) if settings.config_path else None,
                "config_found": settings.config_found,
                "home": str(settings.home),
                "home_source": settings.home_source,
                "settings": data,
                "sources": sources,
            }
        )
        return
    output.say(f"[bold]config file[/bold]  {settings.config_path or '(none)'}  [dim]({settings.config_found})[/dim]")
    output.say(f"[bold]home[/bold]         {settings.home}  [dim]({settings.home_source})[/dim]")
    rows = []

    def walk(value: object, prefix: str) -> None:
        if (
            isinstance(value, dict)
            and prefix.rstrip(".") not in ("model.env",)
            and not prefix.startswith("executors.")
            and value
        ):
            for k, v in value.items():
                walk(v, f"{prefix}{k}.")
            return
        key = prefix.rstrip(".")
        rows.append(
            (
                key,
                output.escape(repr(value) if not isinstance(value, str) else value),
                sources.get(key, sources.get(key.rsplit(".", 1)[0], "default")),
            )
        )

    for key, value in data.items():
        if key == "home":
            continue
        walk(value, f"{key}.")
    output.table(None, ("key", "value", "from"), rows)


@app.command("check")
def check(json_: bool = typer.Option(False, "--json", help="Output as JSON.")) -> None:
    """Validate the configuration (every key, every executor); exit 1 with the first problem."""
    from cosmoskit._cli import output

    settings, data = _effective(check_executors=True)
    if json_:
        output.emit_json(
            {
                "ok": True,
                "config_file": str(settings.config_path) if settings.config_path else None,
                "home": str(settings.home),
                "executors": list(data["executors"]),
            }
        )
        return
    where = settings.config_path or "defaults (no cosmoskit.yaml found)"
    output.say(f"OK: {where} is valid; {len(data['executors'])} executor(s): {', '.join(data['executors'])}")
