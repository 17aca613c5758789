"""One OpenAI client per stack: the embedding, chat and transcription providers share it, so one
connection pool serves them all (counted by the stub), and the stack closes it once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from synthstack_core import Settings, SynthStack
from synthstack_core.features.audio import AudioUpload
from synthstack_core.providers.llm import ChatMessage
from synthstack_core.ratelimits import BudgetedLLMProvider
from synthstack_core.schemas.transcription import TranscriptionParameters
from synthstack_testing import OpenAIStub

SPEECH = Path(__file__).parent / "fixtures" / "audio" / "speech.wav"


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


def _settings(database_url: str, stub: OpenAIStub | None) -> Settings:
    remote = (
        {} if stub is None else {"OPENAI_API_KEY": stub.api_key, "OPENAI_BASE_URL": stub.base_url}
    )
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        DATABASE_URL=database_url,
        SYNTHSTACK_API_KEYS="shared-client:shared-client-key-0001",
        SYNTHSTACK_MIGRATE_ON_START=False,
        SYNTHSTACK_PROVIDER_MAX_RETRIES=0,
        **remote,
    )


async def test_one_pool_serves_embeddings_chat_and_transcription(
    database_url: str, stub: OpenAIStub
) -> None:
    async with SynthStack(_settings(database_url, stub)) as stack:
        shared = stack.openai_client
        assert shared is not None
        embedding = stack.embeddings.registry.lookup("text-embedding-3-small")[1]
        budgeted = stack.generation.registry.lookup("gpt-4o-mini")[1]
        assert isinstance(budgeted, BudgetedLLMProvider)  # every chat model spends a budget
        chat = budgeted.inner
        transcription = stack.transcription.registry.lookup("whisper-1")[1]
        assert embedding.client is chat.client is transcription.client is shared  # type: ignore[attr-defined]

        before = stub.accepted_connections
        embedded = await stack.embeddings.generate("one pool", model="text-embedding-3-small")
        assert embedded.dimensions == 1536
        completion = await stack.generation.complete(
            [ChatMessage("user", "one pool")], model="gpt-4o-mini"
        )
        assert completion.finish_reason == "stop"
        heard = await stack.transcription.transcribe(
            AudioUpload(SPEECH), TranscriptionParameters(model="whisper-1")
        )
        assert heard.transcript.model == "whisper-1"
        paths = [request.path for request in stub.requests[-3:]]
        assert paths == ["/v1/embeddings", "/v1/chat/completions", "/v1/audio/transcriptions"]
        assert stub.accepted_connections - before == 1, "each call opened its own connection"
        sdk = shared.get()
        assert not sdk.is_closed()
    assert sdk.is_closed()  # closed with the stack
    assert stack.openai_client is None


async def test_no_client_without_openai(database_url: str) -> None:
    async with SynthStack(_settings(database_url, None)) as stack:
        assert stack.openai_client is None
        assert all(spec.provider != "openai" for spec in stack.embeddings.registry.specs())
        assert all(spec.provider != "openai" for spec in stack.generation.registry.specs())
