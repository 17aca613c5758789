"""An example SynthStack plugin: ``POST /api/v1/readability`` scores a text's reading ease.

Installed next to ``synthstack-core``, it is served by both backends: its ``pyproject.toml``
declares :data:`MODULE` in the ``synthstack.modules`` entry-point group.
"""

from __future__ import annotations

from synthstack_readability.module import (
    MODULE,
    ReadabilityRequest,
    ReadabilityResponse,
    ReadabilityService,
    ReadabilitySettings,
)
from synthstack_readability.scoring import Readability, score

__all__ = [
    "MODULE",
    "Readability",
    "ReadabilityRequest",
    "ReadabilityResponse",
    "ReadabilityService",
    "ReadabilitySettings",
    "score",
]
