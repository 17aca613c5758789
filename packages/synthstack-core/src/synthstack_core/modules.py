"""The modules a stack serves: the built-in ones, in the order the stack builds them (a module's
``build`` may use the services of the modules before it), then the installed plugins' (see
:mod:`synthstack_core.plugins`); and the migrations of all of them."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from synthstack_core.features import (
    analysis,
    complexity,
    embeddings,
    generation,
    health,
    jobs,
    observability,
    rag,
    transcription,
    usage,
)
from synthstack_core.plugins import load_plugins, with_plugins
from synthstack_core.registry import Module
from synthstack_core.settings import Settings
from synthstack_core.stores.database import migrate as migrate_schema

__all__ = ["BUILTIN_MODULES", "installed_modules", "migrate", "modules_for"]

BUILTIN_MODULES: tuple[Module[Any], ...] = (
    # First: it applies the log format before the other modules start.
    observability.MODULE,
    # Early: built before the features and closed after them, so their last counts are written.
    usage.MODULE,
    embeddings.MODULE,
    generation.MODULE,
    health.MODULE,
    jobs.MODULE,
    rag.MODULE,
    complexity.MODULE,
    analysis.MODULE,
    transcription.MODULE,
)


@functools.cache
def modules_for(selection: tuple[str, ...] | None) -> tuple[Module[Any], ...]:
    """The built-in modules and the selected plugins' (``None``: every installed plugin; ``()``:
    none), loaded and checked once per process."""
    return with_plugins(BUILTIN_MODULES, load_plugins(selection))


def installed_modules(settings: Settings | None = None) -> tuple[Module[Any], ...]:
    """The modules ``settings`` (default: the environment's) select: the built-in ones and the
    plugins ``SYNTHSTACK_PLUGINS`` names (unset: every installed one)."""
    if settings is None:
        return _environment_modules()
    return modules_for(settings.plugins)


@functools.cache
def _environment_modules() -> tuple[Module[Any], ...]:
    return modules_for(Settings().plugins)


def migrate(
    database_url: str, revision: str = "heads", modules: Sequence[Module[Any]] | None = None
) -> None:
    """Bring the core's schema and the tables of ``modules`` (default: the environment's) to
    ``revision`` (``heads``: every branch's latest; a revision of the core's: that one, and no
    plugin's). Blocking; call it from a thread in async code."""
    chosen = installed_modules() if modules is None else modules
    migrate_schema(
        database_url,
        revision,
        locations=[module.migrations for module in chosen if module.migrations is not None],
    )
