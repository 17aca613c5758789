"""Django's view of the core's tables, for the admin.

The core owns these tables (SQLAlchemy models and Alembic migrations in ``synthstack_core.stores``);
the models here are ``managed = False``, so Django's migrations never create, alter or drop them.
API keys are created and revoked through the core (see :mod:`synthstack_django.admin`), never by
writing rows here; RAG collections and documents are only read here and deleted through the core.

The RAG models leave out what the admin has no use for: a chunk's ``embedding`` (a pgvector
``vector`` of the collection's dimension) and the BM25 postings (``rag_postings``). Their foreign
keys are ``DO_NOTHING``: the database cascades (collection → documents → chunks → postings), and
the admin deletes through the core anyway.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from synthstack_core.ratelimits import check_policy_name, parse_rate
from synthstack_core.settings import TENANT_NAME_PATTERN

__all__ = [
    "ApiKey",
    "Chunk",
    "Collection",
    "Document",
    "Job",
    "JobPayload",
    "RateLimitOverride",
    "Tenant",
    "UsageQuantities",
    "UsageRequests",
]


class Tenant(models.Model):
    """A customer of the deployment (table ``tenants``)."""

    # The database's own defaults are not applied by Django's inserts, so Django supplies them.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[
            RegexValidator(
                f"^{TENANT_NAME_PATTERN}$",
                "1-64 letters, digits, `.`, `_` or `-`, starting with a letter or digit.",
            )
        ],
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        managed = False
        db_table = "tenants"
        ordering = ("name",)
        verbose_name = "tenant"
        verbose_name_plural = "tenants"

    def __str__(self) -> str:
        return str(self.name)


class ApiKey(models.Model):
    """An API key (table ``api_keys``): only its prefix and the SHA-256 of its secret are stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, db_column="tenant_id", related_name="api_keys"
    )
    name = models.CharField(max_length=128, blank=True, default="")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        managed = False
        db_table = "api_keys"
        ordering = ("-created_at",)
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def __str__(self) -> str:
        label = self.name or "unnamed key"
        return f"{label} (ssk_{self.prefix}_…)" if self.prefix else label

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None


class CollectionManager(models.Manager["Collection"]):
    """Collections with their tenant (a collection's name is unique only within its tenant)."""

    def get_queryset(self) -> models.QuerySet[Collection]:
        """Every collection, its tenant joined."""
        return super().get_queryset().select_related("tenant")


class Collection(models.Model):
    """A tenant's RAG collection (table ``rag_collections``); its embedding model is fixed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.DO_NOTHING, db_column="tenant_id", related_name="collections"
    )
    name = models.CharField(max_length=64)
    description = models.TextField(blank=True, default="")
    embedding_model = models.CharField(max_length=128)
    dimensions = models.IntegerField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CollectionManager()

    class Meta:
        managed = False
        db_table = "rag_collections"
        ordering = ("tenant__name", "name")
        verbose_name = "collection"
        verbose_name_plural = "collections"

    def __str__(self) -> str:
        return f"{self.tenant.name} / {self.name}"


class Document(models.Model):
    """A document of a collection (table ``rag_documents``); ``external_id`` is the API's id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    collection = models.ForeignKey(
        Collection,
        on_delete=models.DO_NOTHING,
        db_column="collection_id",
        related_name="documents",
    )
    external_id = models.CharField("document id", max_length=256)
    source = models.CharField(max_length=512)
    source_type = models.CharField(max_length=16)
    title = models.TextField(null=True, blank=True)
    metadata = models.JSONField(default=dict)
    content_sha256 = models.CharField("content SHA-256", max_length=64)
    characters = models.IntegerField()
    chunk_count = models.IntegerField("chunks")
    chunk_size = models.IntegerField()
    chunk_overlap = models.IntegerField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        managed = False
        db_table = "rag_documents"
        ordering = ("-updated_at",)
        verbose_name = "document"
        verbose_name_plural = "documents"

    def __str__(self) -> str:
        return str(self.external_id)


class Chunk(models.Model):
    """A chunk of a document (table ``rag_chunks``), without its vector."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    document = models.ForeignKey(
        Document, on_delete=models.DO_NOTHING, db_column="document_id", related_name="chunks"
    )
    collection = models.ForeignKey(
        Collection, on_delete=models.DO_NOTHING, db_column="collection_id", related_name="chunks"
    )
    position = models.IntegerField()
    content = models.TextField()
    char_start = models.IntegerField()
    char_end = models.IntegerField()
    page = models.IntegerField(null=True, blank=True)
    token_count = models.IntegerField("tokens")
    lexeme_count = models.IntegerField("lexemes")
    dimensions = models.IntegerField()

    class Meta:
        managed = False
        db_table = "rag_chunks"
        ordering = ("document_id", "position")
        verbose_name = "chunk"
        verbose_name_plural = "chunks"

    def __str__(self) -> str:
        return f"{self.document} #{self.position}"


class Job(models.Model):
    """A job (table ``jobs``): what the API shows of long work a worker runs."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.DO_NOTHING, db_column="tenant_id", related_name="jobs"
    )
    kind = models.TextField()
    status = models.TextField()
    progress_done = models.IntegerField(default=0)
    progress_total = models.IntegerField(null=True, blank=True)
    progress_unit = models.TextField()
    attempts = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    procrastinate_job_id = models.BigIntegerField(null=True, blank=True)
    #: The ``X-Request-Id`` of the request that submitted it (its access-log line's).
    request_id = models.TextField(default="", blank=True)
    #: The runs its provider failed (429, 5xx): ``SYNTHSTACK_JOB_MAX_ATTEMPTS`` counts these.
    provider_failures = models.IntegerField(default=0)
    #: When a run's write of its work committed (a cancel is refused after it).
    stored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        managed = False
        db_table = "jobs"
        ordering = ("-created_at",)
        verbose_name = "job"
        verbose_name_plural = "jobs"

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"


class JobPayload(models.Model):
    """What a queued or running job needs (table ``job_payloads``), deleted when it ends."""

    job = models.OneToOneField(
        Job,
        on_delete=models.DO_NOTHING,
        primary_key=True,
        db_column="job_id",
        related_name="payload",
    )
    request = models.JSONField()
    data = models.BinaryField(null=True, blank=True)

    class Meta:
        managed = False
        db_table = "job_payloads"
        verbose_name = "job payload"
        verbose_name_plural = "job payloads"

    def __str__(self) -> str:
        return f"payload of {self.job_id}"


def _valid_policy(value: str) -> None:
    try:
        check_policy_name(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _valid_rate(value: str) -> None:
    try:
        parse_rate(value, allow_unlimited=True)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class RateLimitOverride(models.Model):
    """A tenant's own rate for one policy (table ``rate_limit_overrides``): it replaces the entry
    of ``SYNTHSTACK_RATE_LIMITS`` with the same name for that tenant. Every process reads it again
    within ``SYNTHSTACK_RATE_LIMIT_CACHE_SECONDS`` (10 s)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, db_column="tenant_id", related_name="rate_limit_overrides"
    )
    policy = models.CharField(
        max_length=64,
        validators=[_valid_policy],
        help_text="A group of operations (the operation's tag: embeddings, rag, generation, "
        "analysis, complexity, transcription, a plugin's), `default` (every group without its "
        "own entry) or `tokens` (the chat-model token budget of the tenant).",
    )
    rate = models.CharField(
        max_length=64,
        validators=[_valid_rate],
        help_text="Requests per API key (tokens per tenant for `tokens`), e.g. `600/minute`, "
        "`60 per minute`, `10/2 seconds`; or `unlimited`.",
    )
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        managed = False
        db_table = "rate_limit_overrides"
        ordering = ("tenant__name", "policy")
        unique_together = (("tenant", "policy"),)
        verbose_name = "rate-limit override"
        verbose_name_plural = "rate-limit overrides"

    def __str__(self) -> str:
        return f"{self.tenant}: {self.policy} = {self.rate}"


class UsageRequests(models.Model):
    """Requests of one tenant in one hour (UTC) of one operation with one status (table
    ``usage_requests``, written by the core's request pipeline; read-only here)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.DO_NOTHING, db_column="tenant_id", related_name="usage_requests"
    )
    hour = models.DateTimeField(help_text="The hour (UTC) the requests ended in.")
    operation_id = models.CharField("operation", max_length=128)
    status = models.IntegerField()
    requests = models.BigIntegerField()

    class Meta:
        managed = False
        db_table = "usage_requests"
        ordering = ("-hour", "tenant__name", "operation_id", "status")
        verbose_name = "usage: requests"
        verbose_name_plural = "usage: requests"

    def __str__(self) -> str:
        return f"{self.tenant} {self.hour:%Y-%m-%d %H:00} {self.operation_id} {self.status}"


class UsageQuantities(models.Model):
    """What one tenant's requests used in one hour (UTC) (table ``usage_quantities``, written by
    the core's features; read-only here)."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.DO_NOTHING, db_column="tenant_id", related_name="usage_quantities"
    )
    hour = models.DateTimeField(help_text="The hour (UTC) the quantities were counted in.")
    texts_embedded = models.BigIntegerField()
    prompt_tokens = models.BigIntegerField("LLM prompt tokens")
    completion_tokens = models.BigIntegerField("LLM completion tokens")
    audio_seconds = models.FloatField("seconds of audio")
    bytes_ingested = models.BigIntegerField()

    class Meta:
        managed = False
        db_table = "usage_quantities"
        ordering = ("-hour", "tenant__name")
        verbose_name = "usage: quantities"
        verbose_name_plural = "usage: quantities"

    def __str__(self) -> str:
        return f"{self.tenant} {self.hour:%Y-%m-%d %H:00}"
