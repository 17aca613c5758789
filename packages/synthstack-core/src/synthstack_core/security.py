"""API-key authentication, the caller's tenant, and the development-mode rule.

Both adapters use the same :class:`ApiKeyAuthenticator` (through the core's request pipeline), so a
key accepted by one backend is accepted by the other, with the same 401 otherwise.

Keys come from ``SYNTHSTACK_API_KEYS`` (kept as SHA-256 digests, all compared in constant time) and
from the database (see :mod:`synthstack_core.stores.api_keys`). Authentication may be off only in
development, with no key configured anywhere and a loopback bind; production refuses to start
without keys. While it is off, whether a key exists in the database is asked again (one ``EXISTS``)
at most every ``SYNTHSTACK_KEY_CACHE_SECONDS``: a key created meanwhile by another process
(``synthstack keys create``) turns it on for good.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from synthstack_core.errors import Unauthenticated
from synthstack_core.settings import DEFAULT_TENANT, Settings
from synthstack_core.stores.api_keys import ApiKeyRepository

__all__ = [
    "ApiKeyAuthenticator",
    "ConfigurationError",
    "Principal",
    "is_loopback",
    "key_from_headers",
]

logger = logging.getLogger(__name__)


class ConfigurationError(RuntimeError):
    """The settings make the service unsafe or impossible to start."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant, and which key (``None`` when authentication is off)."""

    tenant: str
    key_id: str | None
    source: Literal["settings", "database", "anonymous"]


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key of ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (lower-case names).

    A header sent more than once reaches the core as its values joined by ``,`` (what WSGI servers
    do, and the FastAPI adapter too). No key holds a ``,`` and a bearer token has none, so a ``,``
    in either header means several credentials: :class:`Unauthenticated` ``repeated_credentials``
    (servers and proxies disagree on which of several values counts: a proxy that checks the first
    one must not let a request through on the last one).
    """
    for name in ("authorization", "x-api-key"):
        if "," in headers.get(name, ""):
            raise Unauthenticated(
                "Send one API key: the Authorization or X-API-Key header was repeated or holds "
                "a list.",
                code="repeated_credentials",
            )
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    api_key = headers.get("x-api-key", "").strip()
    return api_key or None


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ApiKeyAuthenticator:
    """Turns request headers into a :class:`Principal`, or raises :class:`Unauthenticated`."""

    def __init__(self, settings: Settings, repository: ApiKeyRepository | None) -> None:
        self._settings_keys = [
            (hashlib.sha256(e.key.encode()).digest(), e.tenant) for e in settings.parsed_api_keys()
        ]
        self._repository = repository
        self._cache_seconds = settings.key_cache_seconds
        self._remembered: dict[bytes, tuple[float, Principal | None]] = {}
        self.enabled = True
        #: While authentication is off: when to ask the database again whether a key exists.
        self._next_key_check = 0.0

    @property
    def settings_tenants(self) -> set[str]:
        """Tenants named in ``SYNTHSTACK_API_KEYS``."""
        return {tenant for _, tenant in self._settings_keys}

    async def configure(self, settings: Settings) -> None:
        """Decide whether authentication is on, from the keys that exist now.

        Raises :class:`ConfigurationError` in production without any key.
        """
        database_keys = await self._repository.count_active() if self._repository else 0
        has_keys = bool(self._settings_keys) or database_keys > 0
        if has_keys:
            self.enabled = True
            return
        if settings.env == "production":
            raise ConfigurationError(
                "SYNTHSTACK_ENV=production needs API keys: set SYNTHSTACK_API_KEYS or create one "
                "with `synthstack keys create`."
            )
        if not is_loopback(settings.bind_host):
            raise ConfigurationError(
                f"Refusing to serve without API keys on {settings.bind_host}: authentication may "
                "be off only in development on a loopback address. Set SYNTHSTACK_API_KEYS."
            )
        self.enabled = False
        self._next_key_check = time.monotonic() + self._cache_seconds
        logger.warning(
            "!!! AUTHENTICATION IS DISABLED: development mode, no API key configured, "
            "bound to %s. Every caller acts as tenant %r. Set SYNTHSTACK_API_KEYS to enable it. !!!",
            settings.bind_host,
            DEFAULT_TENANT,
        )

    def key_created(self) -> None:
        """A key was created in this process: authentication is on from now, nothing stale."""
        self.enabled = True
        self._remembered.clear()

    def key_revoked(self) -> None:
        """A key was revoked in this process: forget remembered lookups so it stops at once."""
        self._remembered.clear()

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller of a request with these (lower-cased) headers."""
        if not self.enabled and not await self._key_appeared():
            return Principal(tenant=DEFAULT_TENANT, key_id=None, source="anonymous")
        key = key_from_headers(headers)
        if key is None:
            raise Unauthenticated(
                "Send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`.",
                code="missing_api_key",
            )
        principal = await self._principal(key)
        if principal is None:
            raise Unauthenticated("The API key is unknown or revoked.", code="invalid_api_key")
        return principal

    async def identifies(self, headers: Mapping[str, str]) -> bool:
        """Whether these (lower-cased) headers carry one valid API key, whether or not
        authentication is on. Never raises for a missing, repeated or unknown key: for the
        operations that need no key but tell more to a caller with one (``/ready``)."""
        try:
            key = key_from_headers(headers)
        except Unauthenticated:
            return False
        return key is not None and await self._principal(key) is not None

    async def _principal(self, key: str) -> Principal | None:
        """The caller holding ``key``, or ``None`` for an unknown or revoked key."""
        digest = hashlib.sha256(key.encode()).digest()
        principal: Principal | None = None
        for stored, tenant in self._settings_keys:  # no early exit: constant time over all keys
            if hmac.compare_digest(stored, digest):
                principal = Principal(tenant=tenant, key_id=None, source="settings")
        if principal is None and self._repository is not None:
            principal = await self._lookup(key, digest)
        return principal

    async def _key_appeared(self) -> bool:
        """While authentication is off: whether a key exists in the database now (another
        process created one), asked at most every key-cache period; when one does, authentication
        is on from now on. A database that does not answer fails the request (503), never lets it
        through as anonymous once it cannot tell."""
        now = time.monotonic()
        if self._repository is None or now < self._next_key_check:
            return False
        # Set before asking: the requests that arrive meanwhile do not ask too.
        self._next_key_check = now + self._cache_seconds
        try:
            found = await self._repository.any_active()
        except BaseException:
            self._next_key_check = 0.0  # unknown: ask again on the next request
            raise
        if found:
            logger.warning("An API key exists now: authentication is on from this request.")
            self.key_created()
        return found

    async def _lookup(self, key: str, digest: bytes) -> Principal | None:
        now = time.monotonic()
        remembered = self._remembered.get(digest)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        assert self._repository is not None
        record = await self._repository.find_active(key)
        principal = (
            Principal(tenant=record.tenant, key_id=str(record.id), source="database")
            if record is not None
            else None
        )
        if self._cache_seconds > 0:
            if len(self._remembered) > 10_000:
                self._remembered.clear()
            self._remembered[digest] = (now + self._cache_seconds, principal)
        return principal
