"""Modules from other packages: the ``synthstack.modules`` entry points.

A pip-installed package adds a module to SynthStack by declaring an entry point in the group
:data:`ENTRY_POINT_GROUP` whose object is a :class:`~synthstack_core.registry.Module`, a sequence
of them, or a callable (no arguments) returning either::

    [project.entry-points."synthstack.modules"]
    readability = "synthstack_readability:MODULE"

The stack serves the built-in modules, then every installed plugin's, ordered by entry-point name
(so the order does not depend on how the packages were installed). ``SYNTHSTACK_PLUGINS`` selects
them: unset, every installed plugin; empty, none (no plugin is even imported); otherwise the
comma-separated entry-point names to load (an unknown name is an error).

Whatever is wrong with a plugin is a :class:`PluginError` naming its entry point and distribution,
raised when the operations are first computed (an adapter's app creation): an import error, an
object that is not a module, a module named like another, a fragment redefining a path or a
component of the contract, an operation its fragment does not describe, a handler whose parameters
do not fit. A plugin never goes missing silently.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from synthstack_core.contract import load_contract
from synthstack_core.registry import Module, merged_contract, operations_of

__all__ = ["ENTRY_POINT_GROUP", "Plugin", "PluginError", "load_plugins", "with_plugins"]

#: The entry-point group a plugin declares its modules in.
ENTRY_POINT_GROUP = "synthstack.modules"
_METHODS = frozenset({"get", "put", "post", "delete", "patch"})


class PluginError(RuntimeError):
    """A plugin that cannot be served; the message names its entry point and distribution."""


@dataclass(frozen=True)
class Plugin:
    """One ``synthstack.modules`` entry point and the modules it gave."""

    #: The entry point's name (what ``SYNTHSTACK_PLUGINS`` lists).
    name: str
    #: The entry point's object reference, ``package.module:attribute``.
    value: str
    #: The distribution declaring it (``""`` when unknown).
    distribution: str
    modules: tuple[Module[Any], ...]

    def describe(self) -> str:
        """``name = value`` and the distribution, as error messages name a plugin."""
        where = f" (distribution {self.distribution})" if self.distribution else ""
        return f"plugin {self.name!r} = {self.value!r}{where}"


def _describe(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = entry_point.dist
    where = f" (distribution {dist.name} {dist.version})" if dist is not None else ""
    return f"plugin {entry_point.name!r} = {entry_point.value!r}{where}"


def _entry_points(selection: Sequence[str] | None) -> list[importlib.metadata.EntryPoint]:
    """The selected entry points of the group, by name (``None``: all of them)."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        known = found.get(entry_point.name)
        if known is not None and known.value != entry_point.value:
            raise PluginError(
                f"two plugins are named {entry_point.name!r}: {_describe(known)} and "
                f"{_describe(entry_point)}"
            )
        found[entry_point.name] = entry_point
    if selection is None:
        return [found[name] for name in sorted(found)]
    unknown = [name for name in selection if name not in found]
    if unknown:
        raise PluginError(
            f"SYNTHSTACK_PLUGINS names {', '.join(map(repr, unknown))}, which no installed package "
            f"declares (installed: {', '.join(sorted(found)) or 'none'})"
        )
    return [found[name] for name in sorted(set(selection))]


def _modules_of(entry_point: importlib.metadata.EntryPoint) -> tuple[Module[Any], ...]:
    """The modules an entry point gives (its object, or what calling it returns)."""
    try:
        loaded = entry_point.load()
        if callable(loaded) and not isinstance(loaded, Module):
            loaded = loaded()
    except Exception as exc:
        raise PluginError(
            f"{_describe(entry_point)} cannot be loaded: {type(exc).__name__}: {exc}"
        ) from exc
    modules = (loaded,) if isinstance(loaded, Module) else loaded
    if (
        isinstance(modules, str | bytes)
        or not isinstance(modules, Sequence)
        or not modules
        or not all(isinstance(module, Module) for module in modules)
    ):
        raise PluginError(
            f"{_describe(entry_point)} gives {type(loaded).__name__}, not a synthstack_core "
            "Module, a sequence of them, or a callable returning either"
        )
    return tuple(modules)


def load_plugins(selection: Sequence[str] | None = None) -> tuple[Plugin, ...]:
    """The selected plugins (``None``: every installed one; ``()``: none), by entry-point name,
    each loaded (imported) once per call."""
    if selection is not None and not selection:
        return ()
    plugins: list[Plugin] = []
    for entry_point in _entry_points(selection):
        dist = entry_point.dist
        plugins.append(
            Plugin(
                name=entry_point.name,
                value=entry_point.value,
                distribution=f"{dist.name} {dist.version}" if dist is not None else "",
                modules=_modules_of(entry_point),
            )
        )
    return tuple(plugins)


def with_plugins(
    builtin: Sequence[Module[Any]], plugins: Sequence[Plugin]
) -> tuple[Module[Any], ...]:
    """``builtin`` followed by the plugins' modules, each plugin checked against what precedes it
    (names, contract fragment, operations), so that an error names the plugin at fault."""
    modules = list(builtin)
    for plugin in plugins:
        names = {module.name for module in modules}
        services = {module.service for module in modules}
        for module in plugin.modules:
            if module.name in names:
                raise PluginError(f"{plugin.describe()}: a module named {module.name!r} exists")
            if module.service in services:
                raise PluginError(
                    f"{plugin.describe()}: {module.service.__name__} is another module's service"
                )
            names.add(module.name)
            services.add(module.service)
        candidate = [*modules, *plugin.modules]
        try:
            operations_of(candidate, merged_contract(load_contract(), candidate))
        except (TypeError, ValueError) as exc:
            raise PluginError(f"{plugin.describe()}: {exc}") from exc
        declared = {d.operation_id for m in plugin.modules for _, d in m.declarations()}
        described = {
            spec.get("operationId")
            for m in plugin.modules
            for item in (m.contract or {}).get("paths", {}).values()
            for method, spec in item.items()
            if method in _METHODS
        }
        if described - declared:
            raise PluginError(
                f"{plugin.describe()}: its contract describes operations no handler serves: "
                f"{', '.join(sorted(map(str, described - declared)))}"
            )
        modules = candidate
    return tuple(modules)
