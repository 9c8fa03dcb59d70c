"""Plugins import cosmoskit only through its one declared surface (``cosmoskit`` and ``cosmoskit.api``).

The bundled plugins obey it, so a third-party package can do whatever they do; docs/plugins.md
documents every public name (as test_hook_docs keeps the hooks in step).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import cosmoskit
from cosmoskit import api

REPO = Path(__file__).resolve().parent.parent
PLUGIN_ROOTS = [REPO / "plugins", REPO / "tests" / "thirdparty_plugin"]
DOCS = REPO / "docs" / "plugins.md"
ROOT_NAMES = {"api", "hookimpl", "CosmoskitError", "__version__"}


def violations(source: str, filename: str) -> list[str]:
    """Each import or attribute use of cosmoskit outside the surface, as ``file:line: what``."""
    tree = ast.parse(source, filename)
    found = []
    cosmoskit_aliases: set[str] = set()
    api_aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "cosmoskit":
                    cosmoskit_aliases.add(alias.asname or "cosmoskit")
                elif alias.name == "cosmoskit.api":
                    if alias.asname:
                        api_aliases.add(alias.asname)
                    else:
                        cosmoskit_aliases.add("cosmoskit")
                elif alias.name.startswith("cosmoskit.") or alias.name in ("cosmoskit_remote",):
                    found.append(f"{filename}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [a.name for a in node.names]
            if module == "cosmoskit":
                bad = [n for n in names if n not in ROOT_NAMES]
                found += [f"{filename}:{node.lineno}: from cosmoskit import {n}" for n in bad]
                api_aliases.update(a.asname or a.name for a in node.names if a.name == "api")
            elif module == "cosmoskit.api":
                bad = [n for n in names if n not in api.__all__]
                found += [f"{filename}:{node.lineno}: from cosmoskit.api import {n} (not in cosmoskit.api)"
                          for n in bad]
            elif module.startswith("cosmoskit.") or module == "cosmoskit_remote":
                found.append(f"{filename}:{node.lineno}: from {module} import {', '.join(names)}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in api_aliases and node.attr not in api.__all__:
                found.append(f"{filename}:{node.lineno}: api.{node.attr} (not in cosmoskit.api)")
            if node.value.id in cosmoskit_aliases and node.attr not in ROOT_NAMES:
                found.append(f"{filename}:{node.lineno}: cosmoskit.{node.attr}")
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Name) and node.value.value.id in cosmoskit_aliases
                and node.value.attr == "api" and node.attr not in api.__all__):
            found.append(f"{filename}:{node.lineno}: cosmoskit.api.{node.attr} (not in cosmoskit.api)")
    return found


def plugin_modules() -> list[Path]:
    return sorted(p for root in PLUGIN_ROOTS for p in root.rglob("*.py"))


def test_every_plugin_module_imports_only_the_public_surface():
    problems = [v for path in plugin_modules() for v in violations(path.read_text(), str(path.relative_to(REPO)))]
    assert not problems, "plugins reach past cosmoskit.api:\n" + "\n".join(problems)


@pytest.mark.parametrize("source, expected", [
    ("from cosmoskit import api\napi.Operation\n", []),
    ("from cosmoskit.api import Operation, Outcome\n", []),
    ("import cosmoskit\ncosmoskit.hookimpl\ncosmoskit.api.Executor\n", []),
    ("from cosmoskit._core.engine import Engine\n", ["x.py:1: from cosmoskit._core.engine import Engine"]),
    ("from cosmoskit._core import context\n", ["x.py:1: from cosmoskit._core import context"]),
    ("import cosmoskit._cli.output\n", ["x.py:1: import cosmoskit._cli.output"]),
    ("from cosmoskit import plugins\n", ["x.py:1: from cosmoskit import plugins"]),
    ("from cosmoskit.api import Tx, Secret\n", ["x.py:1: from cosmoskit.api import Secret (not in cosmoskit.api)"]),
    ("from cosmoskit import api\napi.secret()\n", ["x.py:2: api.secret (not in cosmoskit.api)"]),
    ("import cosmoskit\ncosmoskit._core\n", ["x.py:2: cosmoskit._core"]),
    ("import cosmoskit_remote\n", ["x.py:1: import cosmoskit_remote"]),
    ("def f():\n    from cosmoskit._core import ids\n", ["x.py:2: from cosmoskit._core import ids"]),
])
def test_the_checker_itself(source, expected):
    assert violations(source, "x.py") == expected


def test_every_public_name_resolves():
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert set(dir(api)) == set(api.__all__)
    with pytest.raises(AttributeError):
        api.nothing_of_the_sort  # noqa: B018


def test_the_root_package_exports_only_the_plugin_basics():
    assert set(cosmoskit.__all__) == {"CosmoskitError", "hookimpl", "__version__"}
    assert cosmoskit.hookimpl is api.hookimpl and cosmoskit.CosmoskitError is api.CosmoskitError


def documented_names() -> set[str]:
    """Names in the reference table of docs/plugins.md: rows starting with a backticked name."""
    text = DOCS.read_text()
    section = text[text.index("# The public surface"):text.index("# Base classes")]
    return set(re.findall(r"^\| `(\w+)`", section, re.M))


def test_docs_document_every_public_name_and_no_other():
    documented = documented_names()
    missing = sorted(set(api.__all__) - documented)
    extra = sorted(documented - set(api.__all__))
    assert not missing, f"docs/plugins.md does not document cosmoskit.api names: {missing}"
    assert not extra, f"docs/plugins.md documents names cosmoskit.api does not have: {extra}"


def test_importing_the_surface_is_cheap():
    """`import cosmoskit.api` must not pull in the engine, the ledger or rich (cosmoskit --help stays fast)."""
    import subprocess
    import sys

    code = ("import sys, cosmoskit.api; heavy = [m for m in ('cosmoskit._core.engine', 'cosmoskit._core.ledger', "
            "'tinydb', 'rich', 'paramiko', 'yaml') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_the_docs_echo_is_the_outside_package_echo():
    """docs/plugins.md shows the operation and the executor the outside test package really runs end to end."""
    source = (REPO / "tests/thirdparty_plugin/cosmoskit_hello/__init__.py").read_text()
    text = DOCS.read_text()
    for cls in ("Echo", "Here"):
        body = re.search(rf"^class {cls}\(.*?(?=^class |^@api\.hookimpl)", source, re.S | re.M).group(0).rstrip()
        assert body in text, f"docs/plugins.md shows another {cls} than the package's"


def test_what_type_checkers_see_is_what_runs():
    """api.py names each public object twice (for first-use import, and for type checkers): the same."""
    tree = ast.parse((REPO / "cosmoskit" / "api.py").read_text())
    typed = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                for alias in imp.names:
                    typed[alias.asname or alias.name] = f"{imp.module}:{alias.name}"
    runtime = {name: (t if t.startswith("cosmoskit.") else f"cosmoskit.{t}").replace(".hookspecs", ".hookspecs")
               for name, t in api._NAMES.items()}
    assert typed == runtime
