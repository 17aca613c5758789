"""How long a job waits before its next run when a provider asked for time: the provider's own
``Retry-After`` (or OpenAI's ``retry-after-ms``), read from the SDK's error the provider's error was
raised from, capped; nothing when the provider said nothing."""

from __future__ import annotations

import datetime
import email.utils

import httpx
import openai
import pytest

from synthstack_core.errors import ProviderError, RateLimited
from synthstack_core.features.jobs.service import RETRY_AFTER_MAX_SECONDS, provider_wait


def _raised_from(status: int, headers: dict[str, str]) -> BaseException:
    """A provider's error raised from the ``openai`` SDK's error for an answer ``status``."""
    request = httpx.Request("POST", "https://api.openai.example/v1/embeddings")
    response = httpx.Response(status, headers=headers, request=request)
    sdk = (
        openai.RateLimitError("slow down", response=response, body=None)
        if status == 429
        else openai.InternalServerError("busy", response=response, body=None)
    )
    mapped: Exception = RateLimited("limited") if status == 429 else ProviderError("failed")
    try:
        raise mapped from sdk
    except Exception as raised:
        return raised


@pytest.mark.parametrize("status", [429, 503])
def test_a_provider_s_retry_after_in_seconds(status: int) -> None:
    assert provider_wait(_raised_from(status, {"retry-after": "12"})) == 12.0


def test_openai_s_retry_after_ms_comes_first() -> None:
    error = _raised_from(429, {"retry-after": "12", "retry-after-ms": "2500"})
    assert provider_wait(error) == 2.5


def test_a_retry_after_as_an_http_date() -> None:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=40)
    wait = provider_wait(_raised_from(503, {"retry-after": email.utils.format_datetime(when)}))
    assert wait is not None and 35 <= wait <= 40


def test_a_long_retry_after_is_capped() -> None:
    assert provider_wait(_raised_from(429, {"retry-after": "86400"})) == RETRY_AFTER_MAX_SECONDS


def test_no_retry_after_no_wait_of_the_provider_s() -> None:
    # A 429 of SynthStack's own says 1 s when the provider said nothing: not taken for its word.
    assert provider_wait(_raised_from(429, {})) is None
    assert provider_wait(_raised_from(503, {"retry-after": "soon"})) is None
    assert provider_wait(ProviderError("no answer at all")) is None
