"""The HTTP contract (``contracts/openapi.yaml``), as both adapters serve it.

The wheel carries a copy of the contract (``synthstack_core/openapi.yaml``); a source checkout reads
the repository's own file, so there is one source of truth.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

__all__ = ["contract_json", "load_contract"]


def _contract_path() -> Path:
    packaged = Path(__file__).with_name("openapi.yaml")
    if packaged.is_file():
        return packaged
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "contracts" / "openapi.yaml"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("contracts/openapi.yaml not found")


@functools.cache
def load_contract() -> dict[str, Any]:
    """The contract as a dict (parsed once)."""
    import yaml

    loaded: dict[str, Any] = yaml.safe_load(_contract_path().read_text(encoding="utf-8"))
    return loaded


@functools.cache
def contract_json() -> bytes:
    """The contract as compact JSON bytes (what ``/openapi.json`` and the Django schema serve)."""
    return json.dumps(load_contract(), separators=(",", ":")).encode()
