"""Rate limits of the API, per API key, per group of operations (``SYNTHSTACK_RATE_LIMITS``).

The rules: ``default=600/minute;generation=60/minute`` names a policy per group of operations (an
operation's group is its first tag in the contract: ``embeddings``, ``rag``, ``generation``, ...;
a plugin's tag works the same); ``default`` is the policy of every group without one of its own,
and those groups share its counter. A tenant's overrides (stored in PostgreSQL, table
``rate_limit_overrides``) replace the setting's entries of the same name for that tenant, and may
say ``unlimited``. ``health`` operations are never limited.

Counting: each API key has its own counter per policy (a database key by its id, a key of
``SYNTHSTACK_API_KEYS`` by a digest of it; every caller shares one while authentication is off),
under the tenant's limit. The algorithm and its storage are the ``limits`` library's: the moving
window (a request counts for exactly the window after it; no burst at a window's edge), in Redis
when ``REDIS_URL`` is set (one counter for every replica and worker), else in this process. A
Redis failure falls back to in-process counters for a few seconds, then Redis is tried again.

Answers carry the headers of the IETF httpapi draft "RateLimit header fields for HTTP":
``RateLimit-Policy: "generation";q=60;w=60`` and ``RateLimit: "generation";r=12;t=7`` (``r``
requests left, ``t`` seconds until the oldest request counted leaves the window); over the limit,
429 ``rate_limited`` with ``Retry-After`` as well.

Token budgets (``SYNTHSTACK_TOKEN_BUDGET``, or a tenant's override named ``tokens``): chat-model
tokens per tenant and window, counted from the usage the model reports (:class:`BudgetedLLMProvider`
wraps every chat provider), on the library's fixed window. The same wrapper counts those tokens in
the tenant's usage (:mod:`synthstack_core.usage`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, TypeVar

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from synthstack_core import tracing
from synthstack_core.errors import RateLimitExceeded
from synthstack_core.providers.llm import (
    ChatCompletion,
    ChatDelta,
    ChatRequest,
    LLMModelSpec,
    LLMProvider,
    LLMUsage,
)
from synthstack_core.usage import UsageScope, current_scope

__all__ = [
    "DEFAULT_POLICY",
    "NEVER_LIMITED",
    "TOKENS_POLICY",
    "UNLIMITED",
    "BudgetedLLMProvider",
    "Caller",
    "RateLimitDecision",
    "RateLimiter",
    "check_policy_name",
    "parse_rate",
    "parse_rate_limits",
]

logger = logging.getLogger(__name__)

L = TypeVar("L", MovingWindowRateLimiter, FixedWindowRateLimiter)
T = TypeVar("T")

#: The policy of every group that has none of its own.
DEFAULT_POLICY = "default"
#: An override's value for "no limit".
UNLIMITED = "unlimited"
#: Groups no limit applies to.
NEVER_LIMITED = frozenset({"health"})
#: The policy of the tenants' chat-model token budget (``SYNTHSTACK_TOKEN_BUDGET``, or an override
#: of this name); no group of operations may be called so.
TOKENS_POLICY = "tokens"
_POLICY_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")

#: ``None`` is "unlimited".
Rules = Mapping[str, RateLimitItem | None]


def check_policy_name(name: str) -> str:
    """``name`` if it can name a policy (a group, as contract tags are spelled, or ``default``)."""
    if not _POLICY_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a group name (1-64 lower-case letters, digits, `.`, `_`, `-`)"
        )
    if name in NEVER_LIMITED:
        raise ValueError(f"the {name!r} operations are never limited")
    return name


def parse_rate(text: str, *, allow_unlimited: bool = False) -> RateLimitItem | None:
    """One rate in the ``limits`` notation (``600/minute``, ``60 per minute``, ``10/2 seconds``);
    ``unlimited`` is ``None`` where ``allow_unlimited``."""
    value = text.strip()
    if allow_unlimited and value.lower() == UNLIMITED:
        return None
    try:
        items = parse_many(value)
    except ValueError:
        items = []
    if len(items) != 1 or items[0].amount < 1:
        raise ValueError(
            f"{value!r} is not a rate: write a positive count per unit, e.g. `600/minute`, "
            "`60 per minute`, `10/2 seconds` (units: second, minute, hour, day, month, year)"
            + (", or `unlimited`" if allow_unlimited else "")
        )
    return items[0]


def parse_rate_limits(value: str) -> dict[str, RateLimitItem]:
    """``SYNTHSTACK_RATE_LIMITS``: ``name=rate`` entries separated by ``;`` (empty: none)."""
    rules: dict[str, RateLimitItem] = {}
    for raw in value.split(";"):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, rate = entry.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"{entry!r} is not `group=rate` (e.g. `generation=60/minute`)")
        check_policy_name(name)
        if name == TOKENS_POLICY:
            raise ValueError(f"{name!r} is no group: the token budget is SYNTHSTACK_TOKEN_BUDGET")
        if name in rules:
            raise ValueError(f"{name!r} is given twice")
        item = parse_rate(rate)
        assert item is not None
        rules[name] = item
    return rules


class Caller(Protocol):
    """Who is calling (:class:`synthstack_core.security.Principal`)."""

    @property
    def tenant(self) -> str: ...
    @property
    def key_id(self) -> str | None: ...
    @property
    def source(self) -> str: ...


@dataclass(frozen=True)
class RateLimitDecision:
    """A request counted under a policy: what its answer tells the client."""

    policy: str
    quota: int
    window_seconds: int
    remaining: int
    reset_seconds: int

    def headers(self) -> list[tuple[str, str]]:
        """``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers)."""
        return [
            ("RateLimit-Policy", f'"{self.policy}";q={self.quota};w={self.window_seconds}'),
            ("RateLimit", f'"{self.policy}";r={self.remaining};t={self.reset_seconds}'),
        ]


class RateLimiter:
    """Counts requests per key and policy; refuses those over the tenant's limit.

    ``overrides(tenant)`` reads a tenant's overrides (``{policy: rate text}``) from the database;
    each tenant's are remembered for ``override_cache_seconds`` in this process, so an edit applies
    within that delay. ``key_of(headers)`` is the API key a request authenticated with.
    """

    def __init__(
        self,
        rules: Mapping[str, RateLimitItem],
        *,
        redis_url: str | None,
        overrides: Callable[[str], Awaitable[Mapping[str, str]]] | None,
        key_of: Callable[[Mapping[str, str]], str | None],
        token_budget: RateLimitItem | None = None,
        override_cache_seconds: float = 10.0,
        pause_seconds: float = 5.0,
        timeout_seconds: float = 0.5,
    ) -> None:
        self.rules: dict[str, RateLimitItem | None] = dict(rules)
        if token_budget is not None:
            self.rules[TOKENS_POLICY] = token_budget
        self._overrides = overrides
        self._key_of = key_of
        self._cache_seconds = override_cache_seconds
        self._remembered: dict[str, tuple[float, dict[str, RateLimitItem | None]]] = {}
        memory = MemoryStorage()
        self._memory = MovingWindowRateLimiter(memory)
        # Token budgets count what was spent, after the fact: a fixed window always adds a cost
        # (the moving window refuses, and forgets, a cost over what is left).
        self._memory_tokens = FixedWindowRateLimiter(memory)
        self._redis_storage: Storage | None = None
        self._redis: MovingWindowRateLimiter | None = None
        self._redis_tokens: FixedWindowRateLimiter | None = None
        if redis_url:
            # redis-py (a dependency already), not the library's default client (coredis).
            scheme, sep, rest = redis_url.partition("://")
            self._redis_storage = RedisStorage(
                # The library's names of the cache's schemes: redis, rediss, unix (a socket).
                f"async+{'redis+unix' if scheme == 'unix' else scheme}{sep}{rest}",
                implementation="redispy",
                wrap_exceptions=True,
                key_prefix="synthstack:ratelimit",
                socket_timeout=timeout_seconds,
                socket_connect_timeout=timeout_seconds,
            )
            self._redis = MovingWindowRateLimiter(self._redis_storage)
            self._redis_tokens = FixedWindowRateLimiter(self._redis_storage)
        self._pause = pause_seconds
        self._down_until = 0.0
        #: Requests refused in this process (for metrics and tests).
        self.refused = 0

    @property
    def storage(self) -> str:
        """Where the counters are now: ``redis``, or ``memory`` (no Redis, or Redis is down)."""
        return "redis" if self._redis is not None and self._redis_up() else "memory"

    def _redis_up(self) -> bool:
        return time.monotonic() >= self._down_until

    def forget(self, tenant: str | None = None) -> None:
        """Read a tenant's (every tenant's) overrides again at its next request."""
        if tenant is None:
            self._remembered.clear()
        else:
            self._remembered.pop(tenant, None)

    async def rules_for(self, tenant: str) -> dict[str, RateLimitItem | None]:
        """The setting's rules with the tenant's overrides applied."""
        if self._overrides is None:
            return self.rules
        now = time.monotonic()
        remembered = self._remembered.get(tenant)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        try:
            stored = await self._overrides(tenant)
        except Exception as exc:  # the database is down: keep what was known, ask again soon
            logger.warning("rate-limit overrides of %r unreadable: %s", tenant, type(exc).__name__)
            rules = remembered[1] if remembered is not None else self.rules
            self._remembered[tenant] = (now + min(self._cache_seconds, self._pause), rules)
            return rules
        rules = dict(self.rules)
        for name, text in stored.items():
            try:
                rules[name] = parse_rate(text, allow_unlimited=True)
            except ValueError:  # written around the command and the admin: ignore, loudly
                logger.warning("ignoring the invalid rate %r of %r for %r", text, name, tenant)
        if len(self._remembered) > 10_000:
            self._remembered.clear()
        self._remembered[tenant] = (now + self._cache_seconds, rules)
        return rules

    def _key(self, caller: Caller, headers: Mapping[str, str]) -> str:
        if caller.key_id is not None:
            return f"key:{caller.key_id}"
        key = self._key_of(headers) if caller.source == "settings" else None
        if key is None:
            return caller.source
        return "settings:" + hashlib.sha256(key.encode()).hexdigest()[:24]

    async def check(
        self, group: str, caller: Caller, headers: Mapping[str, str]
    ) -> RateLimitDecision | None:
        """Count one request of ``group`` by ``caller``: its decision (``None`` when no limit
        applies), or :class:`RateLimitExceeded` when the caller is over its limit."""
        if group in NEVER_LIMITED:
            return None
        rules = await self.rules_for(caller.tenant)
        policy = group if group in rules else DEFAULT_POLICY
        item = rules.get(policy)
        if item is None:
            return None
        identifiers = (policy, caller.tenant, self._key(caller, headers))
        allowed, remaining, reset_at = await self._count(item, identifiers)
        decision = RateLimitDecision(
            policy=policy,
            quota=item.amount,
            window_seconds=item.get_expiry(),
            remaining=max(0, remaining),
            reset_seconds=max(0, math.ceil(reset_at - time.time())),
        )
        if not allowed:
            self.refused += 1
            raise RateLimitExceeded(
                f"The rate limit of this API key for {policy!r} operations ({item.amount} "
                f"requests per {item.get_expiry()} s) is used up.",
                retry_after=max(1, decision.reset_seconds),
                headers=decision.headers(),
            )
        return decision

    async def _count(
        self, item: RateLimitItem, identifiers: tuple[str, ...]
    ) -> tuple[bool, int, float]:
        """Hit the counter: (allowed, remaining, when the oldest counted request leaves)."""

        async def count(limiter: MovingWindowRateLimiter) -> tuple[bool, int, float]:
            allowed = await limiter.hit(item, *identifiers)
            stats = await limiter.get_window_stats(item, *identifiers)
            return allowed, stats.remaining, stats.reset_time

        return await self._with_storage(count, self._redis, self._memory)

    async def _with_storage(
        self, run: Callable[[L], Awaitable[T]], redis_limiter: L | None, memory_limiter: L
    ) -> T:
        """``run`` on Redis's limiter, or the process's while Redis is (found) down."""
        if redis_limiter is not None and self._redis_up():
            try:
                return await run(redis_limiter)
            except Exception as exc:  # StorageError (wrapped), or the client's own
                if self._redis_up():
                    logger.warning(
                        "redis unavailable, counting rate limits in this process for %.0fs: %s",
                        self._pause,
                        type(exc).__name__,
                    )
                self._down_until = time.monotonic() + self._pause
        return await run(memory_limiter)

    # -- token budgets ---------------------------------------------------------------------

    def bind(self, tenant: str | None) -> None:
        """Make ``tenant`` the one whose token budget the chat models of this request (the
        current context) spend."""
        _BUDGET.set(None if tenant is None else (self, tenant))

    async def check_tokens(self, tenant: str) -> None:
        """:class:`RateLimitExceeded` when ``tenant``'s token budget is spent for this window."""
        with tracing.span("token budget"):
            await self._check_tokens(tenant)

    async def _check_tokens(self, tenant: str) -> None:
        item = (await self.rules_for(tenant)).get(TOKENS_POLICY)
        if item is None:
            return

        async def left(limiter: FixedWindowRateLimiter) -> tuple[int, float]:
            stats = await limiter.get_window_stats(item, TOKENS_POLICY, tenant)
            return stats.remaining, stats.reset_time

        remaining, reset_at = await self._with_storage(
            left, self._redis_tokens, self._memory_tokens
        )
        if remaining > 0:
            return
        self.refused += 1
        decision = RateLimitDecision(
            policy=TOKENS_POLICY,
            quota=item.amount,
            window_seconds=item.get_expiry(),
            remaining=0,
            reset_seconds=max(0, math.ceil(reset_at - time.time())),
        )
        raise RateLimitExceeded(
            f"The chat-model token budget of this tenant ({item.amount} tokens per "
            f"{item.get_expiry()} s) is spent.",
            retry_after=max(1, decision.reset_seconds),
            headers=decision.headers(),
        )

    async def spend_tokens(self, tenant: str, tokens: int) -> None:
        """Count ``tokens`` a chat model read and wrote for ``tenant`` (all of them: the last
        generation may overdraw the budget; the next one is refused until the window ends)."""
        with tracing.span("token budget"):
            item = (await self.rules_for(tenant)).get(TOKENS_POLICY)
            if item is None or tokens <= 0:
                return

            async def spend(limiter: FixedWindowRateLimiter) -> bool:
                return await limiter.hit(item, TOKENS_POLICY, tenant, cost=tokens)

            await self._with_storage(spend, self._redis_tokens, self._memory_tokens)

    async def aclose(self) -> None:
        """Stop the in-process counters' expiry task; release Redis connections."""
        timer = getattr(self._memory.storage, "timer", None)
        if timer is not None and not timer.done():
            timer.cancel()
        if self._redis_storage is not None:
            connection = getattr(getattr(self._redis_storage, "bridge", None), "storage", None)
            close = getattr(connection, "aclose", None)
            if close is not None:
                await close()


#: The limiter and tenant of the request being served (set by the pipeline after authentication).
_BUDGET: ContextVar[tuple[RateLimiter, str] | None] = ContextVar("synthstack_budget", default=None)


def _count_usage(scope: UsageScope | None, usage: LLMUsage) -> None:
    """The tokens of one generation, in the tenant's usage."""
    if scope is not None:
        scope.count(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)


class BudgetedLLMProvider(LLMProvider):
    """A chat provider whose generations spend the calling tenant's token budget: refused (429)
    when it is spent, counted from the usage the model reports (in the budget, and in the tenant's
    usage: prompt and completion tokens). Outside a request (the library used directly), nothing
    is counted."""

    def __init__(self, inner: LLMProvider) -> None:
        self.inner = inner

    @staticmethod
    def wrap(inner: LLMProvider) -> LLMProvider:
        """``inner`` with a budget, as a provider of the same name and kind."""
        kind = type(
            f"Budgeted{type(inner).__name__}",
            (BudgetedLLMProvider,),
            {"name": inner.name, "remote": inner.remote},
        )
        provider: LLMProvider = kind(inner)
        return provider

    def models(self) -> Sequence[LLMModelSpec]:
        """The inner provider's."""
        return self.inner.models()

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        """Checked before, counted after."""
        budget = _BUDGET.get()
        if budget is not None:
            await budget[0].check_tokens(budget[1])
        completion = await self.inner.complete(request)
        _count_usage(current_scope(), completion.usage)
        if budget is not None:
            await budget[0].spend_tokens(budget[1], completion.usage.total_tokens)
        return completion

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatDelta | ChatCompletion]:
        """Checked before the first piece, counted at the last (the budget is taken from the
        request's context now: the pieces may be pulled from another one; so is the usage's)."""
        return self._stream(request, _BUDGET.get(), current_scope())

    async def _stream(
        self,
        request: ChatRequest,
        budget: tuple[RateLimiter, str] | None,
        usage: UsageScope | None,
    ) -> AsyncIterator[ChatDelta | ChatCompletion]:
        if budget is not None:
            await budget[0].check_tokens(budget[1])
        pieces = self.inner.stream(request)
        try:
            async for piece in pieces:
                if isinstance(piece, ChatCompletion):
                    _count_usage(usage, piece.usage)
                    if budget is not None:
                        await budget[0].spend_tokens(budget[1], piece.usage.total_tokens)
                yield piece
        finally:
            close = getattr(pieces, "aclose", None)
            if close is not None:
                await close()

    async def check(self) -> None:
        """The inner provider's."""
        await self.inner.check()

    async def aclose(self) -> None:
        """The inner provider's."""
        await self.inner.aclose()
