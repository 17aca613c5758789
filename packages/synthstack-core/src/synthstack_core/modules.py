"""The built-in modules, in the order the stack builds them (a module's ``build`` may use the
services of the modules before it)."""

from __future__ import annotations

from typing import Any

from synthstack_core.features import (
    analysis,
    complexity,
    embeddings,
    generation,
    health,
    rag,
    transcription,
)
from synthstack_core.registry import Module

__all__ = ["BUILTIN_MODULES"]

BUILTIN_MODULES: tuple[Module[Any], ...] = (
    embeddings.MODULE,
    generation.MODULE,
    health.MODULE,
    rag.MODULE,
    complexity.MODULE,
    analysis.MODULE,
    transcription.MODULE,
)
