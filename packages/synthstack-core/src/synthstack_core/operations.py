"""The operations both adapters serve: the modules' operations, described by the contract.

Each :class:`~synthstack_core.registry.Operation` is read from ``contracts/openapi.yaml`` (path,
method, tags, summary, success status, authentication), merged with the plugins' fragments, by its
``operationId`` and joined with the service method that handles it (see
:mod:`synthstack_core.registry`). Both adapters build their routes from these lists (computed on
first use, without starting anything), so a new operation, built-in or a plugin's, appears in
both; a test checks the registry against the contract.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from synthstack_core.contract import load_contract
from synthstack_core.modules import installed_modules
from synthstack_core.registry import Module, Operation, merged_contract, operations_of
from synthstack_core.replies import EventStream, RawReply, Reply

__all__ = [
    "OPERATIONS",
    "EventStream",
    "Operation",
    "RawReply",
    "Reply",
    "all_operations",
    "allowed_methods",
    "by_id",
    "contract_for",
    "contract_json_for",
    "match",
    "operations_for",
    "routes",
]


#: Every operation (computed on first use, by :func:`__getattr__`).
OPERATIONS: tuple[Operation, ...]


@functools.cache
def contract_for(modules: tuple[Module[Any], ...]) -> dict[str, Any]:
    """The contract with the fragments of ``modules`` merged in (what is served for them)."""
    return merged_contract(load_contract(), modules)


@functools.cache
def contract_json_for(modules: tuple[Module[Any], ...]) -> bytes:
    """:func:`contract_for` as compact JSON bytes (the contract's own bytes without fragments)."""
    return json.dumps(contract_for(modules), separators=(",", ":")).encode()


@functools.cache
def operations_for(modules: tuple[Module[Any], ...]) -> tuple[Operation, ...]:
    """The operations of ``modules``, described by the contract and the modules' fragments."""
    return tuple(operations_of(modules, contract_for(modules)))


def all_operations() -> tuple[Operation, ...]:
    """The operations of the environment's modules (the built-in ones, then the plugins'), in the
    contract's order."""
    return operations_for(installed_modules())


def __getattr__(name: str) -> tuple[Operation, ...]:
    # ``OPERATIONS`` reads the contract, so it is computed when first asked for, not on import.
    if name == "OPERATIONS":
        return all_operations()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def routes(operations: tuple[Operation, ...] | None = None) -> dict[str, dict[str, Operation]]:
    """``operations`` (default: :func:`all_operations`) grouped by path template, then by method
    (what a router needs)."""
    grouped: dict[str, dict[str, Operation]] = {}
    for op in all_operations() if operations is None else operations:
        grouped.setdefault(op.path, {})[op.method] = op
    return grouped


@functools.cache
def _patterns(
    operations: tuple[Operation, ...] | None,
) -> list[tuple[re.Pattern[str], dict[str, Operation]]]:
    """Each path template as a pattern whose named groups are its parameters."""
    return [
        (
            re.compile(
                re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            ),
            by_method,
        )
        for template, by_method in routes(operations).items()
    ]


def match(
    path: str, operations: tuple[Operation, ...] | None = None
) -> tuple[dict[str, Operation], dict[str, str]] | None:
    """The operations (by method) of ``operations`` (default: :func:`all_operations`) at a
    concrete ``path``, and its path parameters as sent; ``None`` for an unknown path."""
    for pattern, by_method in _patterns(operations):
        matched = pattern.fullmatch(path)
        if matched is not None:
            return by_method, matched.groupdict()
    return None


def allowed_methods(path: str, operations: tuple[Operation, ...] | None = None) -> list[str]:
    """The methods ``operations`` (default: :func:`all_operations`) allow at a concrete ``path``
    (empty for an unknown path)."""
    found = match(path, operations)
    return sorted(found[0]) if found is not None else []


def by_id(operation_id: str) -> Operation:
    """The operation with this ``operationId``."""
    for op in all_operations():
        if op.operation_id == operation_id:
            return op
    raise KeyError(operation_id)
