"""The one model registry (``providers/model_registry.py``) and the three features' uses of it:
lookup, the default, the listing, and the exact problem a client gets for a model not served."""

from __future__ import annotations

from typing import Any

import pytest

from synthstack_core.errors import ModelNotAvailable, problem_for
from synthstack_core.features.embeddings import EmbeddingModelRegistry
from synthstack_core.features.transcription import TranscriptionModelRegistry
from synthstack_core.providers.embedding import EmbeddingModelSpec, EmbeddingProvider
from synthstack_core.providers.llm import LLMRegistry
from synthstack_core.providers.llm_local import LOCAL_MODEL_ID, LocalLLMProvider
from synthstack_core.providers.local_onnx import LOCAL_MODEL, LocalOnnxEmbeddingProvider
from synthstack_core.providers.model_registry import ModelRegistry
from synthstack_core.providers.whisper_local import WHISPER_TINY_EN, LocalWhisperProvider
from synthstack_core.settings import Settings

Registry = ModelRegistry[EmbeddingModelSpec, EmbeddingProvider]


def _problem_body(error: ModelNotAvailable) -> dict[str, Any]:
    return problem_for(error, request_id="r", instance="/x").body


def _registry(default: str | None, *providers: EmbeddingProvider) -> Registry:
    return Registry(providers, default, setting="SOME_MODEL", listing="/somewhere/models")


def test_lookup_by_id_and_by_default() -> None:
    local = LocalOnnxEmbeddingProvider()
    registry = _registry(LOCAL_MODEL.id, local)
    assert registry.lookup(LOCAL_MODEL.id) == (LOCAL_MODEL, local)
    assert registry.lookup(None) == (LOCAL_MODEL, local)
    assert registry.default == LOCAL_MODEL and registry.default_id == LOCAL_MODEL.id
    assert registry.specs() == [LOCAL_MODEL] == registry.specs(default_first=True)


def test_the_first_provider_to_list_a_model_serves_it() -> None:
    first, second = LocalOnnxEmbeddingProvider(), LocalOnnxEmbeddingProvider()
    registry = _registry(None, first, second, first)
    assert registry.lookup(LOCAL_MODEL.id)[1] is first
    assert registry.providers == [first, second]  # each once, in order
    assert registry.specs() == [LOCAL_MODEL]


def test_unknown_model_is_a_422_naming_the_listing() -> None:
    registry = _registry(LOCAL_MODEL.id, LocalOnnxEmbeddingProvider())
    with pytest.raises(ModelNotAvailable) as caught:
        registry.lookup("no-such-model")
    body = _problem_body(caught.value)
    assert body["status"] == 422 and body["code"] == "model_not_available"
    assert (
        body["detail"] == "Model 'no-such-model' is not available here; see GET /somewhere/models."
    )
    assert body["errors"] == [
        {"loc": ["model"], "msg": "Unknown or unavailable model", "type": "model_not_available"}
    ]


def test_no_default_and_an_unserved_default() -> None:
    registry = _registry(None)
    assert registry.default is None and registry.default_id is None and registry.specs() == []
    with pytest.raises(ModelNotAvailable):
        registry.lookup(None)
    with pytest.raises(ValueError, match=r"^SOME_MODEL='gone' cannot be served here \(available: "):
        _registry("gone", LocalOnnxEmbeddingProvider())


# -- the three features: their errors are what they were before the registries were one -------


def test_embedding_registry_errors() -> None:
    registry = EmbeddingModelRegistry([LocalOnnxEmbeddingProvider()], LOCAL_MODEL.id)
    assert registry.default == LOCAL_MODEL
    assert registry.resolve(None, None)[0] == LOCAL_MODEL
    with pytest.raises(ModelNotAvailable) as caught:
        registry.resolve("text-embedding-3-small", None)
    assert _problem_body(caught.value)["detail"] == (
        "Model 'text-embedding-3-small' is not available here; see GET /api/v1/embeddings/models."
    )
    assert _problem_body(caught.value)["errors"][0]["type"] == "model_not_available"
    with pytest.raises(ModelNotAvailable) as caught:
        registry.resolve(LOCAL_MODEL.id, 128)
    assert caught.value.instance_code == "dimensions_not_supported"
    with pytest.raises(ValueError) as failed:
        EmbeddingModelRegistry([LocalOnnxEmbeddingProvider()], "text-embedding-3-small")
    assert str(failed.value) == (
        "EMBEDDING_MODEL='text-embedding-3-small' cannot be served here (available: "
        f"{LOCAL_MODEL.id}); OpenAI models need OPENAI_API_KEY or OPENAI_BASE_URL."
    )


def test_transcription_registry_errors() -> None:
    whisper = LocalWhisperProvider()
    registry = TranscriptionModelRegistry([whisper], WHISPER_TINY_EN.id)
    assert registry.default == WHISPER_TINY_EN
    assert registry.lookup(None) == (WHISPER_TINY_EN, whisper)
    with pytest.raises(ModelNotAvailable) as caught:
        registry.lookup("whisper-1")
    body = _problem_body(caught.value)
    assert body["detail"] == (
        "Model 'whisper-1' is not available here; see GET /api/v1/transcription/languages."
    )
    assert body["errors"] == [
        {"loc": ["model"], "msg": "Unknown or unavailable model", "type": "model_not_available"}
    ]
    with pytest.raises(ValueError, match=r"^SYNTHSTACK_TRANSCRIPTION_MODEL='whisper-1' cannot"):
        TranscriptionModelRegistry([whisper], "whisper-1")


def test_llm_registry_errors() -> None:
    local = LocalLLMProvider.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    registry = LLMRegistry([local], None)
    assert registry.default_id == LOCAL_MODEL_ID  # no setting: the first provider's first model
    with pytest.raises(ModelNotAvailable) as caught:
        registry.lookup("gpt-4o")
    body = _problem_body(caught.value)
    assert body["detail"] == (
        f"This chat model is not available in this deployment; available models: {LOCAL_MODEL_ID}."
    )
    assert body["errors"] == []
    with pytest.raises(ModelNotAvailable) as caught:
        LLMRegistry([], None).lookup(None)
    assert _problem_body(caught.value)["detail"] == (
        "No chat model is configured is not available in this deployment; available models: none."
    )
