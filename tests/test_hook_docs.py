"""docs/plugins.md keeps in step with cosmoskit/hookspecs.py (as datasette's test_plugin_hooks_are_documented)."""
from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from cosmoskit._core import plugins

from conftest import in_process_plugins

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
HOOK_HEADING = re.compile(r"^## (\w+)\(([^)]*)\)\s*$", re.M)


def hook_signatures() -> dict[str, str]:
    """``{hook: "hook(arg1, arg2)"}`` for every hook with a spec (a misspelled hook a test registered has none)."""
    out = {}
    for name, caller in vars(plugins.pm.hook).items():
        spec = getattr(caller, "spec", None)
        if name.startswith("_") or spec is None:
            continue
        out[name] = f"{name}({', '.join(spec.argnames)})"
    return out


def documented() -> dict[str, str]:
    return {m.group(1): f"{m.group(1)}({m.group(2)})" for m in HOOK_HEADING.finditer(DOCS.read_text())}


def section(hook: str) -> str:
    text = DOCS.read_text()
    start = re.search(rf"^## {hook}\(", text, re.M)
    assert start, hook
    end = re.search(r"^#{1,2} ", text[start.end():], re.M)
    return text[start.end(): start.end() + end.start() if end else len(text)]


def test_the_hookspecs_are_the_ones_of_the_design():
    assert set(hook_signatures()) == {"register_operations", "register_strategies", "register_executors",
                                      "register_runtimes", "register_settings", "register_tables",
                                      "register_commands", "run_finished"}


@pytest.mark.parametrize("hook", sorted(hook_signatures()))
def test_plugin_hooks_are_documented(hook):
    signature = hook_signatures()[hook]
    assert documented().get(hook) == signature, f"docs/plugins.md needs a section headed `## {signature}`"


def test_docs_document_no_hook_that_does_not_exist():
    extra = set(documented()) - set(hook_signatures())
    assert not extra, f"docs/plugins.md documents hooks that hookspecs.py does not define: {sorted(extra)}"


def test_docs_name_the_entry_point_group_base_classes_and_tools():
    text = DOCS.read_text()
    for needed in ("[project.entry-points.cosmoskit]", "cosmoskit.api.Operation",
                   "cosmoskit.api.BatchingStrategy", "cosmoskit.api.Executor", "cosmoskit.api.Runtime",
                   "COSMOSKIT_LOAD_PLUGINS", "cosmoskit plugins --json"):
        assert needed in text, needed


def _example(hook: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", section(hook), re.S)
    assert blocks, f"the {hook} section of docs/plugins.md has no python example"
    return blocks[0]


@pytest.mark.parametrize("hook", sorted(hook_signatures()))
def test_each_hook_example_is_a_working_plugin(hook, monkeypatch):
    """Each section's example, loaded as a plugin module, passes pluggy's checks and contributes something."""
    import typer

    monkeypatch.delenv("COSMOSKIT_WEBHOOK_URL", raising=False)
    module = types.ModuleType(f"docs_example_{hook}")
    exec(compile(_example(hook), f"docs/plugins.md ({hook})", "exec"), module.__dict__)
    name = f"docs_example_{hook}"
    with in_process_plugins(**{name: module}):
        plugins.check()
        assert [i.plugin_name for i in getattr(plugins.pm.hook, hook).get_hookimpls()].count(name) == 1
        if hook in plugins.REGISTER_HOOKS:
            mine = {n for n, obj in plugins.registry(hook).items()
                    if (obj._plugin if isinstance(obj, type) else obj.plugin) == name}
            assert mine, f"the {hook} example registers nothing"
        elif hook == "register_commands":
            app = typer.Typer()
            getattr(module, hook)(app=app)
            assert app.registered_commands
        else:
            getattr(module, hook)(run={"id": "rs_x", "operation": "transfer", "status": "completed", "error": None})
