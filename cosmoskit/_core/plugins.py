"""The plugin manager: loads entry points of group ``cosmoskit`` and collects registrations.

Bundled plugins (``plugins/cosmoskit_*``) come in through the same entry-point
door as third-party packages.  ``COSMOSKIT_LOAD_PLUGINS`` limits what loads:
unset loads everything, empty loads nothing, otherwise a comma list of
entry-point or distribution names.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

import pluggy

from cosmoskit import hookspecs
from cosmoskit._core.errors import CosmoskitError

GROUP = "cosmoskit"

pm = pluggy.PluginManager(GROUP)
pm.add_hookspecs(hookspecs)

_loaded = False
_loading = False
_load_lock = threading.RLock()
# plugin name -> (distribution name, version) for `cosmoskit plugins`
_distinfo: dict[str, tuple[str, str]] = {}


def _wanted() -> set[str] | None:
    raw = os.environ.get("COSMOSKIT_LOAD_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _norm(dist_name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``Cosmoskit_Hello`` == ``cosmoskit-hello``."""
    return re.sub(r"[-_.]+", "-", dist_name).lower()


def load_plugins() -> None:
    """Load every allowed entry point once, then fail loudly on a misspelled hook.

    Thread-safe: a second thread waits for the first to finish (a server's threads must never see a
    half-filled registry); a plugin that calls back in while being loaded returns at once."""
    global _loaded, _loading
    if _loaded:
        return
    with _load_lock:
        if _loaded or _loading:
            return
        _loading = True
        try:
            _load_entry_points()
        finally:
            _loaded, _loading = True, False


def _load_entry_points() -> None:
    from importlib.metadata import distributions

    wanted = _wanted()
    seen: dict[str, str] = {}  # entry-point name -> its distribution
    for dist in distributions():
        ours = [ep for ep in dist.entry_points if ep.group == GROUP]
        if not ours:
            continue  # reading every distribution's METADATA would cost ~1 ms each at start-up
        dist_name = dist.metadata["Name"] or ""
        for ep in ours:
            if ep.name in seen:
                if _norm(seen[ep.name]) != _norm(dist_name):  # the same dist twice on sys.path is fine
                    raise CosmoskitError(
                        f"the plugin name {ep.name!r} is used by both {seen[ep.name]} and {dist_name}",
                        hint="uninstall one of them",
                    )
                continue
            if wanted is not None and ep.name not in wanted and _norm(dist_name) not in {_norm(w) for w in wanted}:
                continue
            seen[ep.name] = dist_name
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party package must not look like our bug
                raise CosmoskitError(
                    f"plugin {ep.name!r} from {dist_name} {dist.version} failed to import: {exc}",
                    hint="uninstall it or leave it out of COSMOSKIT_LOAD_PLUGINS",
                ) from exc
            pm.register(plugin, name=ep.name)
            _distinfo[ep.name] = (dist_name, dist.version)
    if wanted:
        loaded_dists = {_norm(d) for d, _ in _distinfo.values()}
        missing = {w for w in wanted - seen.keys() if _norm(w) not in loaded_dists}
        if missing:
            raise CosmoskitError(
                f"COSMOSKIT_LOAD_PLUGINS names plugins that are not installed: {', '.join(sorted(missing))}"
            )
    check()


def check() -> None:
    """Turn pluggy's validation error for a misspelled hook into a user-facing one."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise CosmoskitError(f"plugin {plugin_name(exc.plugin)!r}: {exc}") from exc


def plugin_name(plugin: object) -> str:
    return pm.get_name(plugin) or str(getattr(plugin, "__name__", repr(plugin)))


def owner_of(contribution: Any) -> str:
    """The plugin that registered a class (``_plugin``) or an instance such as a Section (``plugin``)."""
    return str(getattr(contribution, "_plugin" if isinstance(contribution, type) else "plugin", ""))


def _base_class(hook_name: str) -> type | None:
    """The class a ``register_*`` hook's contributions must subclass."""
    if hook_name == "register_operations":
        from cosmoskit._core.operation import Operation

        return Operation
    if hook_name == "register_strategies":
        from cosmoskit._core.strategy import BatchingStrategy

        return BatchingStrategy
    if hook_name == "register_executors":
        from cosmoskit._core.executor import Executor

        return Executor
    if hook_name == "register_runtimes":
        from cosmoskit._core.runtime import Runtime

        return Runtime
    if hook_name == "register_settings":
        from cosmoskit._core.sections import Section

        return Section
    if hook_name == "register_tables":
        from cosmoskit._core.tables import LedgerTable

        return LedgerTable
    return None


def contract_problem(obj: Any, base: type | None) -> str | None:
    """Why a registered contribution does not keep its hook's contract, or None."""
    if base is None:
        return None
    if not isinstance(obj, type):
        if isinstance(obj, base):
            return None
        return f"is not a {base.__name__}"
    if not issubclass(obj, base):
        return f"is not a subclass of cosmoskit.api.{base.__name__}"
    missing = sorted(getattr(obj, "__abstractmethods__", ()))
    if missing:
        return f"does not implement {', '.join(missing)} (required by cosmoskit.api.{base.__name__})"
    return None


def collect(hook_name: str) -> dict[str, Any]:
    """Call a ``register_*`` hook plugin by plugin; return ``{name: contribution}``.

    Each contribution must carry a ``name`` and keep its base class's contract
    (every abstract method implemented); a name registered by two plugins is an
    error that names both.
    """
    load_plugins()
    found: dict[str, Any] = {}
    sources: dict[str, str] = {}
    base = _base_class(hook_name)
    caller = getattr(pm.hook, hook_name)
    for impl in caller.get_hookimpls():
        source = impl.plugin_name

        def register(obj: Any, _source: str = source) -> None:
            name = getattr(obj, "name", None)
            if not isinstance(name, str) or not name:
                raise CosmoskitError(f"plugin {_source!r} registered {obj!r} without a name attribute")
            problem = contract_problem(obj, base)
            if problem:
                what = obj.__name__ if isinstance(obj, type) else repr(obj)
                raise CosmoskitError(f"plugin {_source!r} registered {name!r} ({what}), which {problem}")
            if name in found:
                raise CosmoskitError(
                    f"{hook_name}: the name {name!r} is registered by both {sources[name]!r} and {_source!r}",
                    hint="uninstall one of them or leave it out of COSMOSKIT_LOAD_PLUGINS",
                )
            found[name] = obj
            sources[name] = _source
            if isinstance(obj, type):
                obj._plugin = _source  # type: ignore[attr-defined]
            else:
                obj.plugin = _source

        impl.function(register=register)
    return found


_cache: dict[str, dict[str, Any]] = {}


def registry(hook_name: str) -> dict[str, Any]:
    if hook_name not in _cache:
        _cache[hook_name] = collect(hook_name)
    return _cache[hook_name]


def reset() -> None:
    """Forget collected registrations (tests register plugins on the fly)."""
    _cache.clear()


def get_operations() -> dict[str, Any]:
    return registry("register_operations")


def get_strategies() -> dict[str, Any]:
    return registry("register_strategies")


def get_executor_types() -> dict[str, Any]:
    return registry("register_executors")


def get_runtimes() -> dict[str, Any]:
    return registry("register_runtimes")


def operation_names() -> list[str]:
    return sorted(get_operations())


def strategy_names() -> list[str]:
    return sorted(get_strategies())


def executor_type_names() -> list[str]:
    return sorted(get_executor_types())


def runtime_names() -> list[str]:
    return sorted(get_runtimes())


def _lookup(kind: str, hook_name: str, name: str) -> Any:
    found = registry(hook_name)
    if name not in found:
        known = ", ".join(sorted(found)) or "none (no plugin provides one)"
        raise CosmoskitError(f"unknown {kind} {name!r}; known: {known}")
    return found[name]


def get_operation(name: str) -> Any:
    return _lookup("operation", "register_operations", name)


def get_strategy(name: str) -> Any:
    return _lookup("batching strategy", "register_strategies", name)


def operation_for(kind: str, model: str | None) -> Any:
    """The operation of ``kind`` (``transfer``) that runs ``model`` (``transfer2.5``); None: the kind's only one."""
    found = [cls for cls in get_operations().values() if cls.kind_name() == kind]
    if not found:
        raise CosmoskitError(f"no loaded plugin provides a {kind} operation")
    if model is None:
        if len(found) == 1:
            return found[0]
        raise CosmoskitError(f"several models do {kind}: {', '.join(models(kind))}; name one with --model")
    for cls in found:
        if cls.model == model or (cls.model is None and cls.name == model):
            return cls
    raise CosmoskitError(f"unknown model {model!r} for {kind}; known: {', '.join(models(kind))}")


def models(kind: str) -> list[str]:
    """The models that do ``kind``, in registration order."""
    return [cls.model or cls.name for cls in get_operations().values() if cls.kind_name() == kind]


def get_executor_type(name: str) -> Any:
    return _lookup("executor type", "register_executors", name)


def get_runtime(name: str) -> Any:
    return _lookup("runtime", "register_runtimes", name)


REGISTER_HOOKS = {
    "register_operations": "operations",
    "register_strategies": "strategies",
    "register_executors": "executors",
    "register_runtimes": "runtimes",
    "register_settings": "settings",
    "register_tables": "tables",
}


def describe() -> list[dict[str, Any]]:
    """What each loaded plugin is and contributes, for ``cosmoskit plugins``."""
    load_plugins()
    contributions: dict[str, dict[str, list[str]]] = {}
    for hook_name, label in REGISTER_HOOKS.items():
        for name, obj in registry(hook_name).items():
            contributions.setdefault(owner_of(obj), {}).setdefault(label, []).append(name)
    out = []
    for plugin in pm.get_plugins():
        name = plugin_name(plugin)
        dist, version = _distinfo.get(name, ("", ""))
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        entry = {
            "name": name,
            "package": dist or None,
            "version": version or None,
            "module": getattr(plugin, "__name__", None),
            "hooks": hooks,
        }
        entry.update({k: sorted(v) for k, v in contributions.get(name, {}).items()})
        if name in _commands:
            entry["commands"] = _commands[name]
        out.append(entry)
    return sorted(out, key=lambda e: e["name"])


_commands: dict[str, list[str]] = {}


def record_commands(plugin: str, names: list[str]) -> None:
    if names:
        _commands[plugin] = names
