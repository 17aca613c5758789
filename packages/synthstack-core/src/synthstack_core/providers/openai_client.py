"""The one OpenAI SDK client of a stack, shared by its embedding, chat and transcription providers.

One ``openai.AsyncOpenAI`` means one HTTP connection pool to OpenAI (or to the OpenAI-compatible
server at ``OPENAI_BASE_URL``) for the three features, with the configured key, base URL, timeout
and retries. The stack makes an :class:`OpenAIClient` when OpenAI is configured, hands it to the
providers it builds, and closes it once when it closes; the providers never close it.

The SDK is imported when the :class:`OpenAIClient` is made (at start-up), not by the first request:
importing it takes a second or more, and inside a request it would stall the event loop and every
request on it. The SDK's client itself (its HTTP pool) is made on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import openai

    from synthstack_core.settings import Settings

__all__ = ["OpenAIClient"]


class OpenAIClient:
    """The SDK client to OpenAI (or a compatible server), made on first use and shared."""

    def __init__(
        self, *, api_key: str | None, base_url: str | None, timeout: float, max_retries: int
    ) -> None:
        """Describe the client; nothing connects until the first call."""
        importlib.import_module("openai")  # now, at start-up (see the module's docstring)
        self._api_key = api_key
        #: The OpenAI-compatible server's URL (``None``: OpenAI itself).
        self.base_url = base_url
        self._timeout = timeout
        self._max_retries = max_retries
        self._client: openai.AsyncOpenAI | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIClient:
        """The client ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
        ``SYNTHSTACK_PROVIDER_TIMEOUT_SECONDS`` and ``SYNTHSTACK_PROVIDER_MAX_RETRIES`` describe."""
        key = settings.openai_api_key
        return cls(
            api_key=key.get_secret_value() if key is not None else None,
            base_url=settings.openai_base_url,
            timeout=settings.provider_timeout_seconds,
            max_retries=settings.provider_max_retries,
        )

    @property
    def compatible(self) -> bool:
        """Whether this is an OpenAI-compatible server rather than OpenAI itself."""
        return self.base_url is not None

    def get(self) -> openai.AsyncOpenAI:
        """The SDK's client (made on the first call, then always the same one)."""
        if self._client is None:
            import openai  # imported already: no wait here

            self._client = openai.AsyncOpenAI(
                # A self-hosted OpenAI-compatible server often needs no key; the SDK insists on one.
                api_key=self._api_key or "no-key-required",
                base_url=self.base_url,
                timeout=self._timeout,
                max_retries=self._max_retries,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the SDK's HTTP pool (if it was made); a later call makes a new one."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()
