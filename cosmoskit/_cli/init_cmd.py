"""``cosmoskit init [DIR]``: one obvious project, with every setting written out and commented.

The file is made from the schemas themselves (the core's and each loaded plugin's section), so it never
drifts from what `config check` accepts: each key with its default and its documentation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

HEADER = """\
# cosmoskit.yaml — this folder is a cosmoskit project: ledger/, outputs/, batches/ and store/ live here.
#
# Every setting is shown with its default; change what you need and delete the rest if you like.
# cosmoskit finds this file from this folder and every folder below it (as git finds .git).
# `cosmoskit config show` prints the effective settings and where each came from;
# `cosmoskit config check` validates the file (wrong types and unknown keys name the line).
"""


def _value(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text[: -len("\n...")] if text.endswith("\n...") else text.removesuffix("...").strip()


def _lines(schema: dict[str, Any], indent: str) -> list[str]:
    out = []
    for key, spec in schema.items():
        if isinstance(spec, dict):
            out.append(f"{indent}{key}:")
            out += _lines(spec, indent + "  ")
            continue
        comment = f"  # {spec.doc}" if spec.doc else ""
        out.append(f"{indent}{key}: {_value(spec.default)}{comment}")
    return out


def render() -> str:
    """The commented configuration for the core and every loaded plugin."""
    from cosmoskit._core.config import CORE_SCHEMA
    from cosmoskit._core.sections import owned_sections

    blocks = [HEADER]
    for key, spec in CORE_SCHEMA.items():
        if key == "executors":
            blocks.append(
                "# Named places to run batches: `type` picks the executor plugin (local, ssh, slurm …); the\n"
                "# other keys are that type's (`cosmoskit config show` lists them once one is configured).\n"
                "executors: {}\n"
            )
            continue
        if isinstance(spec, dict):
            blocks.append("\n".join([f"{key}:", *_lines(spec, "  ")]) + "\n")
        else:
            blocks.append("\n".join(_lines({key: spec}, "")) + "\n")
    for name, section in sorted(owned_sections().items()):
        about = f"# {section.description} (plugin {section.plugin})\n" if section.description else ""
        blocks.append(about + "\n".join([f"{name}:", *_lines(section.fields, "  ")]) + "\n")
    return "\n".join(blocks)


def init(
    folder: Path = typer.Argument(Path("."), help="Folder of the new project (made if missing)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing cosmoskit.yaml."),
) -> None:
    """Make a project: a commented cosmoskit.yaml with every setting; the ledger and outputs go beside it."""
    from cosmoskit._cli import output
    from cosmoskit._core.config import CONFIG_NAME
    from cosmoskit._core.errors import CosmoskitError

    folder = folder.expanduser().resolve()
    target = folder / CONFIG_NAME
    if target.exists() and not force:
        raise CosmoskitError(f"{target} exists already", hint="edit it, or pass --force to write it anew")
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(render(), encoding="utf-8")
    output.say(f"Wrote {target}: this folder is now a cosmoskit project.")
    output.say(f'Next: cd {folder} && cosmoskit prompt create "a photoreal street at dusk" RENDER_FOLDER')
