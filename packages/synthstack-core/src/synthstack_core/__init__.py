"""SynthStack's core: the whole Generative-AI service, with no web framework.

Build it from settings and use it directly, or serve it over HTTP with ``synthstack serve``::

    from synthstack_core import Settings, SynthStack

    async with SynthStack(Settings()) as stack:
        batch = await stack.embeddings.batch(["a text", "another text"])
        print(batch.dimensions, batch.usage.total_tokens)

Importing this package imports no web framework, loads no model and opens no connection.
"""

from __future__ import annotations

from synthstack_core.errors import (
    Conflict,
    DependencyUnavailable,
    InvalidRequest,
    MalformedBody,
    MethodNotAllowed,
    ModelNotAvailable,
    NotFound,
    PayloadTooLarge,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    RateLimitExceeded,
    SynthStackError,
    Unauthenticated,
    UnsupportedMediaType,
)
from synthstack_core.http import HttpRequest, HttpResponse
from synthstack_core.modules import installed_modules
from synthstack_core.modules import migrate as migrate_database
from synthstack_core.operations import all_operations as _all_operations
from synthstack_core.plugins import PluginError
from synthstack_core.registry import Module, Operation, operation
from synthstack_core.runtime import BlockingSynthStack
from synthstack_core.schemas.embeddings import (
    BatchEmbeddingResponse,
    EmbeddingModelList,
    EmbeddingResponse,
    SimilarityResponse,
)
from synthstack_core.security import Principal
from synthstack_core.service import SynthStack
from synthstack_core.settings import Settings
from synthstack_core.stores.embedded import EmbeddedPostgres
from synthstack_core.version import __version__


def __getattr__(name: str) -> tuple[Operation, ...]:
    # The operations read the contract, so they are computed when first asked for.
    if name == "OPERATIONS":
        return _all_operations()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "OPERATIONS",
    "BatchEmbeddingResponse",
    "BlockingSynthStack",
    "Conflict",
    "DependencyUnavailable",
    "EmbeddedPostgres",
    "EmbeddingModelList",
    "EmbeddingResponse",
    "HttpRequest",
    "HttpResponse",
    "InvalidRequest",
    "MalformedBody",
    "MethodNotAllowed",
    "ModelNotAvailable",
    "Module",
    "NotFound",
    "Operation",
    "PayloadTooLarge",
    "PluginError",
    "Principal",
    "ProviderError",
    "ProviderTimeout",
    "RateLimitExceeded",
    "RateLimited",
    "Settings",
    "SimilarityResponse",
    "SynthStack",
    "SynthStackError",
    "Unauthenticated",
    "UnsupportedMediaType",
    "__version__",
    "installed_modules",
    "migrate_database",
    "operation",
]
