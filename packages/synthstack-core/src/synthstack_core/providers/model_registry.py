"""Which models a deployment serves, through which provider, and which one is the default.

Embeddings, chat models and transcription each keep one :class:`ModelRegistry` of their own
(:class:`~synthstack_core.features.embeddings.EmbeddingModelRegistry`,
:class:`~synthstack_core.providers.llm.LLMRegistry`,
:class:`~synthstack_core.features.transcription.TranscriptionModelRegistry`): a model id maps to
its spec and the provider serving it (the first provider to list an id serves it), a lookup of an
id that is not served raises :class:`~synthstack_core.errors.ModelNotAvailable` (422), and the
listing gives every spec in provider order. What differs between them stays with them: the
embeddings' ``dimensions`` checks, how the default chat model is chosen, each one's error text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

from synthstack_core.errors import FieldError, ModelNotAvailable

__all__ = ["ModelProvider", "ModelRegistry", "ModelSpec"]


class ModelSpec(Protocol):
    """What the registry needs of a model's description: its id."""

    @property
    def id(self) -> str: ...


SpecT = TypeVar("SpecT", bound=ModelSpec)
SpecT_co = TypeVar("SpecT_co", bound=ModelSpec, covariant=True)


class ModelProvider(Protocol[SpecT_co]):
    """What the registry needs of a provider: the models it serves here, and closing it."""

    def models(self) -> Sequence[SpecT_co]: ...

    async def aclose(self) -> None: ...


ProviderT = TypeVar("ProviderT", bound=ModelProvider[Any])


class ModelRegistry(Generic[SpecT, ProviderT]):
    """Model id -> (spec, provider) for the given providers, and the default model."""

    def __init__(
        self,
        providers: Sequence[ProviderT],
        default: str | None,
        *,
        setting: str,
        listing: str,
        hint: str = "",
    ) -> None:
        """Index ``providers``' models: the first provider to list an id serves it.

        ``default`` must be one of the ids (else :class:`ValueError` naming ``setting``, the
        setting that chose it, and the ids served, followed by ``hint``); ``None``: no default,
        and a lookup of no model raises. ``listing`` is where a client finds the models served
        (named by the error of an unknown model).
        """
        self._providers = list({id(provider): provider for provider in providers}.values())
        self._models: dict[str, tuple[SpecT, ProviderT]] = {}
        for provider in self._providers:
            for spec in provider.models():
                self._models.setdefault(spec.id, (spec, provider))
        if default is not None and default not in self._models:
            known = ", ".join(sorted(self._models)) or "none"
            raise ValueError(
                f"{setting}={default!r} cannot be served here (available: {known}){hint}"
            )
        self._default = None if default is None else self._models[default][0]
        self._listing = listing

    @property
    def default(self) -> SpecT | None:
        """The model used when a request names none (``None``: there is no default)."""
        return self._default

    @property
    def default_id(self) -> str | None:
        """The id of :attr:`default`."""
        return None if self._default is None else self._default.id

    @property
    def providers(self) -> list[ProviderT]:
        """Every provider given, once each, in order."""
        return list(self._providers)

    def specs(self, *, default_first: bool = False) -> list[SpecT]:
        """Every model served, in provider order (or with the default first)."""
        specs = [spec for spec, _ in self._models.values()]
        if default_first and self._default is not None:
            default = self._default
            return [default, *(spec for spec in specs if spec.id != default.id)]
        return specs

    def lookup(self, model: str | None) -> tuple[SpecT, ProviderT]:
        """The spec and provider of ``model`` (``None``: the default model).

        Raises :class:`~synthstack_core.errors.ModelNotAvailable` (what :meth:`unavailable`
        builds) when it is not served here.
        """
        wanted = self.default_id if model is None else model
        found = None if wanted is None else self._models.get(wanted)
        if found is None:
            raise self.unavailable(model)
        return found

    def unavailable(self, model: str | None) -> ModelNotAvailable:
        """The error of a lookup of ``model``, which is not served (or of no model, when there
        is no default)."""
        return ModelNotAvailable(
            f"Model {model!r} is not available here; see GET {self._listing}.",
            errors=[FieldError(("model",), "Unknown or unavailable model", "model_not_available")],
        )

    async def aclose(self) -> None:
        """Close every provider."""
        for provider in self._providers:
            await provider.aclose()
