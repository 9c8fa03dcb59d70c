"""Configuration sections owned by plugins: who defines each top-level key of ``cosmoskit.yaml`` beyond the core's.

A plugin declares a section with ``register_settings`` (``watch:`` of the drop
folder); operations and runtimes declare theirs with their ``options``
(``transfer:``, ``emulator:``).  One name has one owner: a second is an error
naming both plugins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cosmoskit._core.errors import CosmoskitError


@dataclass
class Section:
    """One top-level section of ``cosmoskit.yaml``: its name, its fields (``api.Field`` or nested
    mappings of them; each ``doc`` is the comment ``config show`` prints) and what it is for."""

    name: str
    fields: dict[str, Any]
    description: str = ""
    plugin: str = field(default="", compare=False)  # filled in at registration


def owned_sections() -> dict[str, Section]:
    """Every plugin-owned section, by name."""
    from cosmoskit._core import plugins

    found: dict[str, Section] = {}

    def add(section: Section) -> None:
        if section.name in found:
            raise CosmoskitError(
                f"the configuration section {section.name!r} is defined by both {found[section.name].plugin!r} "
                f"and {section.plugin!r}",
                hint="uninstall one of them or leave it out of COSMOSKIT_LOAD_PLUGINS",
            )
        found[section.name] = section

    for _name, section in plugins.registry("register_settings").items():
        add(section)
    for cls in plugins.get_operations().values():
        if cls.options:
            add(Section(cls.config_section or cls.name, cls.options, cls.description, plugins.owner_of(cls)))
    for cls in plugins.get_runtimes().values():
        if cls.options:
            add(Section(cls.name, cls.options, cls.description, plugins.owner_of(cls)))
    return found
