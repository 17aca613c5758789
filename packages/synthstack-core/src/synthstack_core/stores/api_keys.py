"""API keys and tenants in PostgreSQL.

A database key reads ``ssk_<prefix>_<secret>``: the prefix (public, unique) finds the row, and the
SHA-256 of the whole key is compared in constant time. Keys are random 32-byte secrets, so a fast
hash is enough; the plain key is shown once, at creation, and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from synthstack_core.errors import FieldError, InvalidRequest, NotFound
from synthstack_core.settings import TENANT_NAME_PATTERN
from synthstack_core.stores.database import Database
from synthstack_core.stores.models import ApiKey, Tenant

__all__ = [
    "KEY_NAME_MAX_CHARS",
    "ApiKeyRecord",
    "ApiKeyRepository",
    "CreatedApiKey",
    "check_key_name",
    "check_tenant_name",
    "hash_key",
]

#: The longest name of a key (``api_keys.name``).
KEY_NAME_MAX_CHARS = 128

KEY_PREFIX = "ssk_"
TENANT_NAME = re.compile(TENANT_NAME_PATTERN)


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeyRecord:
    """What is known of a key without its secret."""

    id: uuid.UUID
    tenant: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None


@dataclass(frozen=True)
class CreatedApiKey:
    """A new key: its record and the plain secret, shown this once."""

    record: ApiKeyRecord
    secret: str


def _record(key: ApiKey, tenant: str) -> ApiKeyRecord:
    return ApiKeyRecord(key.id, tenant, key.name, key.prefix, key.created_at, key.revoked_at)


def check_tenant_name(name: str) -> str:
    """``name`` if it is a valid tenant name (as ``SYNTHSTACK_API_KEYS`` can spell it)."""
    if not TENANT_NAME.fullmatch(name):
        raise InvalidRequest(
            "A tenant name is 1-64 letters, digits, `.`, `_` or `-`, starting with a letter or digit.",
            errors=[FieldError(("tenant",), "Invalid tenant name", "tenant_name")],
        )
    return name


def check_key_name(name: str) -> str:
    """``name`` if a key may be called so: at most :data:`KEY_NAME_MAX_CHARS` characters, no NUL
    (checked before anything is written: the database's refusal would name the row's values)."""
    if len(name) > KEY_NAME_MAX_CHARS or "\x00" in name:
        raise InvalidRequest(
            f"A key's name is at most {KEY_NAME_MAX_CHARS} characters, without NUL.",
            errors=[FieldError(("name",), "Invalid key name", "key_name")],
        )
    return name


def parse_prefix(key: str) -> str | None:
    """The lookup prefix of a database key, or ``None`` if ``key`` is not shaped like one."""
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if not sep or len(prefix) != 12 or not secret:
        return None
    return prefix


class ApiKeyRepository:
    """Create, find, list and revoke keys; ensure tenants exist."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def ensure_tenant(self, name: str) -> uuid.UUID:
        """The id of tenant ``name``, creating it if needed (safe under concurrency)."""
        check_tenant_name(name)
        async with self._db.session() as session:
            found: uuid.UUID | None = await session.scalar(
                select(Tenant.id).where(Tenant.name == name)
            )
            if found is not None:
                return found
            tenant = Tenant(name=name)
            session.add(tenant)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                found = await session.scalar(select(Tenant.id).where(Tenant.name == name))
                if found is None:  # pragma: no cover - deleted in between
                    raise
                return found
            return tenant.id

    async def create(self, tenant: str, name: str = "") -> CreatedApiKey:
        """A new key for ``tenant`` (created if missing)."""
        check_key_name(name)
        tenant_id = await self.ensure_tenant(tenant)
        prefix = secrets.token_hex(6)
        secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        async with self._db.session() as session:
            key = ApiKey(tenant_id=tenant_id, name=name, prefix=prefix, key_hash=hash_key(secret))
            session.add(key)
            await session.commit()
            await session.refresh(key)
            return CreatedApiKey(_record(key, tenant), secret)

    async def find_active(self, key: str) -> ApiKeyRecord | None:
        """The active key matching ``key``, compared in constant time."""
        prefix = parse_prefix(key)
        if prefix is None:
            return None
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(ApiKey, Tenant.name)
                    .join(Tenant, Tenant.id == ApiKey.tenant_id)
                    .where(ApiKey.prefix == prefix)
                )
            ).first()
        if row is None:
            return None
        stored, tenant = row
        if not hmac.compare_digest(stored.key_hash, hash_key(key)) or stored.revoked_at:
            return None
        return _record(stored, tenant)

    async def list(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        """Every key (of one tenant), newest first."""
        query = select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id)
        if tenant is not None:
            query = query.where(Tenant.name == tenant)
        async with self._db.session() as session:
            rows = (await session.execute(query.order_by(ApiKey.created_at.desc()))).all()
        return [_record(key, name) for key, name in rows]

    async def count_active(self) -> int:
        """How many keys are not revoked."""
        from sqlalchemy import func

        async with self._db.session() as session:
            count = await session.scalar(
                select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
            )
        return int(count or 0)

    async def any_active(self) -> bool:
        """Whether any key is not revoked (one ``EXISTS``: it stops at the first)."""
        async with self._db.session() as session:
            found = await session.scalar(select(exists().where(ApiKey.revoked_at.is_(None))))
        return bool(found)

    async def revoke(self, key_id: uuid.UUID | str) -> ApiKeyRecord:
        """Revoke a key by id or prefix; revoking twice keeps the first time."""
        async with self._db.session() as session:
            query = select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id)
            try:
                query = query.where(ApiKey.id == uuid.UUID(str(key_id)))
            except ValueError:
                query = query.where(ApiKey.prefix == str(key_id))
            row = (await session.execute(query)).first()
            if row is None:
                raise NotFound(f"No API key {key_id}.")
            key, tenant = row
            if key.revoked_at is None:
                key.revoked_at = datetime.now(UTC)
                await session.commit()
            return _record(key, tenant)
