"""One mapping from a remote provider's failure to SynthStack's errors, for every remote SDK.

The ``openai`` and ``anthropic`` SDKs share one exception design (``APITimeoutError``,
``RateLimitError``, ``APIStatusError``, ``APIError``); a failure while a streamed body is being read
is not wrapped by either SDK and arrives as an ``httpx`` exception; a body that is not JSON arrives
as a :class:`ValueError`. All of them become::

    a timeout              -> ProviderTimeout (504)
    HTTP 429               -> RateLimited (429, Retry-After from the provider, at least 1 s)
    any other HTTP status  -> ProviderError (502), naming the status
    anything else          -> ProviderError (502)

The detail is written here and never quotes the provider's message, which may echo a key.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import httpx

from synthstack_core.errors import ProviderError, ProviderTimeout, RateLimited, SynthStackError

__all__ = ["map_remote_error", "retry_after_seconds"]

logger = logging.getLogger(__name__)


def _sdk_modules() -> list[Any]:
    # Only an SDK already imported can have raised: do not import the other one for nothing.
    return [sys.modules[name] for name in ("openai", "anthropic") if name in sys.modules]


def map_remote_error(exc: BaseException, *, subject: str) -> SynthStackError:
    """The SynthStack error for ``exc``, raised by a remote provider's SDK.

    ``subject`` names the caller-visible party, e.g. ``"embedding provider"``; the detail reads
    "The <subject> ...". A :class:`SynthStackError` is returned unchanged.
    """
    if isinstance(exc, SynthStackError):
        return exc
    for sdk in _sdk_modules():
        if isinstance(exc, sdk.APITimeoutError):
            return ProviderTimeout(f"The {subject} did not answer in time.")
        if isinstance(exc, sdk.RateLimitError):
            retry_after = retry_after_seconds(exc.response.headers.get("retry-after"))
            return RateLimited(
                f"The {subject} is rate limiting this deployment.", retry_after=retry_after
            )
        if isinstance(exc, sdk.APIStatusError):
            logger.warning("%s answered HTTP %s", subject, exc.status_code)
            return ProviderError(f"The {subject} refused the request (HTTP {exc.status_code}).")
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(f"The {subject} did not answer in time.")
    logger.warning("%s failed: %s", subject, type(exc).__name__)
    return ProviderError(f"The {subject} could not be reached or answered badly.")


def retry_after_seconds(value: str | None) -> float:
    """A ``Retry-After`` header in seconds (at least 1; 1 when absent or not a number)."""
    try:
        return max(1.0, float(value)) if value else 1.0
    except ValueError:
        return 1.0
