"""The Django admin over the core's tenants, API keys and RAG collections, documents and chunks.

Tenants are plain rows. API keys go through the core: adding one in the admin calls
``api_keys.create`` (which generates the secret and stores only its hash) and shows the secret once,
in a message; the "Revoke selected keys" action calls ``api_keys.revoke``. Existing keys are
read-only, and the stored hash is never displayed.

Rate-limit overrides are plain rows too (tenant, policy, rate), validated as the ``synthstack
limits`` command validates them; every process applies an edit within
``SYNTHSTACK_RATE_LIMIT_CACHE_SECONDS`` (10 s).

Usage (requests by operation and status, and the quantities: texts embedded, chat-model tokens,
audio seconds, bytes ingested) is listed per tenant and hour for every tenant, read-only: the
core's request pipeline writes it.

RAG collections, documents and chunks are browsable and searchable, and read-only. Deleting a
collection or a document (its page's "Delete" or the bulk action) calls the core's
``rag.delete_collection`` / ``rag.delete_document``, so its chunks, vectors and BM25 postings go in
the core's one transaction, exactly as through the API. Chunks are not deleted one by one.

Jobs are listed read-only, with their status, progress and error; the "Cancel selected jobs" action
calls the core's ``jobs.cancel``, as ``DELETE /api/v1/jobs/{id}`` does.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from synthstack_core.errors import Conflict, NotFound
from synthstack_django.models import (
    ApiKey,
    Chunk,
    Collection,
    Document,
    Job,
    RateLimitOverride,
    Tenant,
    UsageQuantities,
    UsageRequests,
)
from synthstack_django.service import get_stack

__all__ = [
    "ApiKeyAdmin",
    "ChunkAdmin",
    "CollectionAdmin",
    "DocumentAdmin",
    "JobAdmin",
    "RateLimitOverrideAdmin",
    "TenantAdmin",
    "UsageQuantitiesAdmin",
    "UsageRequestsAdmin",
]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    """Tenants: list, search, add. A tenant's name is its identity (``SYNTHSTACK_API_KEYS`` names
    tenants), so it cannot be changed once created."""

    list_display = ("name", "active_keys", "created_at", "id")
    search_fields = ("name",)
    ordering = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        """Tenants with the number of their active keys."""
        return (
            super()
            .get_queryset(request)
            .annotate(_active_keys=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True)))
        )

    @admin.display(description="active keys", ordering="_active_keys")
    def active_keys(self, tenant: Tenant) -> int:
        """How many of the tenant's keys are not revoked."""
        return int(getattr(tenant, "_active_keys", 0))

    def get_fields(self, request: HttpRequest, obj: Tenant | None = None) -> tuple[str, ...]:
        """The name to create one; the name, id and creation time of an existing one."""
        return ("name",) if obj is None else ("name", "id", "created_at")

    def get_readonly_fields(
        self, request: HttpRequest, obj: Tenant | None = None
    ) -> tuple[str, ...]:
        """Everything of an existing tenant."""
        return () if obj is None else ("name", "id", "created_at")

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """Django's answer, with the tenants' RAG collections as protected: the database would
        cascade to them, but they are deleted through the core (vectors too), so first."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        collections = Collection.objects.filter(tenant__in=[obj.pk for obj in objs])
        protected = [
            *protected,
            *(
                format_html(
                    'Collection: <a href="{}">{}</a>',
                    reverse("admin:synthstack_django_collection_change", args=[collection.pk]),
                    str(collection),
                )
                for collection in collections
            ),
        ]
        return deleted, counts, perms_needed, protected


class RevokedFilter(admin.SimpleListFilter):
    """Active or revoked keys."""

    title = "status"
    parameter_name = "revoked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> tuple[tuple[str, str], ...]:
        """The two states."""
        return (("no", "Active"), ("yes", "Revoked"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """Keys in the chosen state (all without a choice)."""
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class ApiKeyAddForm(forms.ModelForm):
    """What a new key needs: its tenant and a name. The core makes the rest."""

    class Meta:
        model = ApiKey
        fields = ("tenant", "name")
        help_texts = {"name": "What the key is for (e.g. the client that will use it)."}


_KEY_DETAILS = ("tenant", "name", "prefix", "created_at", "revoked_at", "is_active")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """API keys: created and revoked through the core; otherwise read-only."""

    list_display = ("tenant", "name", "prefix", "created_at", "revoked_at", "is_active")
    list_select_related = ("tenant",)
    list_filter = ("tenant", RevokedFilter)
    search_fields = ("name", "prefix")
    ordering = ("-created_at",)
    actions = ("revoke_keys",)

    @admin.display(description="active", boolean=True)
    def is_active(self, key: ApiKey) -> bool:
        """Not revoked."""
        return key.active

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        """Tenant and name to create a key; its details (never the hash) to view one."""
        return ("tenant", "name") if obj is None else _KEY_DETAILS

    def get_readonly_fields(
        self, request: HttpRequest, obj: ApiKey | None = None
    ) -> tuple[str, ...]:
        """Everything of an existing key."""
        return () if obj is None else _KEY_DETAILS

    def get_form(
        self, request: HttpRequest, obj: ApiKey | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        """The add form asks only for the tenant and a name."""
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        """Never: a key is immutable; revoke it instead."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        """Never: revoked keys stay on record."""
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        """Revoking needs the model's "change" permission."""
        codename = get_permission_codename("change", self.opts)
        return bool(request.user.has_perm(f"{self.opts.app_label}.{codename}"))

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        """Create the key through the core, and show its secret this once (it is not stored)."""
        if change:  # pragma: no cover - has_change_permission() forbids it
            return
        stack = get_stack()
        created = stack.call(stack.stack.create_api_key, obj.tenant.name, obj.name)
        record = created.record
        # The core inserted the row: give the admin (its log, its redirect) the real key.
        obj.id = record.id
        obj.prefix = record.prefix
        obj.created_at = record.created_at
        obj.revoked_at = record.revoked_at
        obj.key_hash = ""
        messages.success(
            request,
            f"API key for tenant “{record.tenant}”: {created.secret} — copy it now: "
            "it will not be shown again (only its hash is stored).",
        )

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        """Revoke each selected key through the core (already revoked keys are left as they are)."""
        stack = get_stack()
        to_revoke = list(queryset.filter(revoked_at__isnull=True).values_list("id", flat=True))
        for key_id in to_revoke:
            stack.call(stack.stack.revoke_api_key, key_id)
        skipped = queryset.count() - len(to_revoke)
        text = f"Revoked {len(to_revoke)} API key{'s' if len(to_revoke) != 1 else ''}."
        if skipped:
            text += f" {skipped} already revoked."
        self.message_user(request, text, messages.SUCCESS)


# ---------------------------------------------------------------------------- rate limits


@admin.register(RateLimitOverride)
class RateLimitOverrideAdmin(admin.ModelAdmin):
    """Tenants' rate-limit overrides: add, edit, delete (``SYNTHSTACK_RATE_LIMITS`` applies to a
    tenant's policies without one)."""

    list_display = ("tenant", "policy", "rate", "updated_at")
    list_select_related = ("tenant",)
    list_filter = ("tenant", "policy")
    search_fields = ("tenant__name", "policy")
    ordering = ("tenant__name", "policy")
    fields = ("tenant", "policy", "rate", "updated_at")
    readonly_fields = ("updated_at",)

    def save_model(
        self, request: HttpRequest, obj: RateLimitOverride, form: Any, change: bool
    ) -> None:
        """Store the rate as the command does (``unlimited`` in lower case), stamped now."""
        obj.rate = obj.rate.strip()
        if obj.rate.lower() == "unlimited":
            obj.rate = "unlimited"
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)


# ------------------------------------------------------------------------------------ RAG

#: What :meth:`ModelAdmin.get_deleted_objects` returns: the nested list the confirmation page
#: shows, the count per kind, the permissions missing and the protected objects.
DeletedObjects = tuple[list[Any], dict[str, int], set[str], list[Any]]


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def _chunks_with_vectors(count: int) -> str:
    return _plural(count, "chunk") + " with their vectors and search postings"


def _deletion_summary(kind: str, objs: list[Any], contents: list[str]) -> list[Any]:
    """The confirmation page's list: the objects, and what goes with them (counted)."""
    listed: list[Any] = [format_html("{}: {}", kind, str(obj)) for obj in objs]
    if len(objs) == 1:
        listed.append(contents)  # nested under the object
    else:
        listed.append("With them: " + ", ".join(contents))
    return listed


def _changelist_link(model: type[Any], text: str, **query: Any) -> str:
    """A link to ``model``'s change list, filtered by ``query``."""
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    if query:
        url += "?" + urlencode(query)
    return format_html('<a href="{}">{}</a>', url, text)


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the core writes: viewed here, never added or edited."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Never: the core writes these rows (through the API)."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Never: the pages are read-only."""
        return False


# ---------------------------------------------------------------------------------- usage


class _UsageAdmin(_ReadOnlyAdmin):
    """Usage rows of every tenant: the core writes them (every few seconds, from each process)."""

    list_select_related = ("tenant",)
    date_hierarchy = "hour"
    search_fields = ("tenant__name",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Never: usage is a record."""
        return False


@admin.register(UsageRequests)
class UsageRequestsAdmin(_UsageAdmin):
    """Requests per tenant, hour, operation and status."""

    list_display = ("hour", "tenant", "operation_id", "status", "requests")
    list_filter = ("tenant", "operation_id", "status")
    search_fields = ("tenant__name", "operation_id")
    ordering = ("-hour", "tenant__name", "operation_id", "status")
    fields = list_display
    readonly_fields = fields


@admin.register(UsageQuantities)
class UsageQuantitiesAdmin(_UsageAdmin):
    """Texts embedded, chat-model tokens, audio seconds and bytes ingested per tenant and hour."""

    list_display = (
        "hour",
        "tenant",
        "texts_embedded",
        "prompt_tokens",
        "completion_tokens",
        "audio_seconds",
        "bytes_ingested",
    )
    list_filter = ("tenant",)
    ordering = ("-hour", "tenant__name")
    fields = list_display
    readonly_fields = fields


@admin.register(Collection)
class CollectionAdmin(_ReadOnlyAdmin):
    """RAG collections; deleted through the core, with everything in them."""

    list_display = (
        "tenant",
        "name",
        "embedding_model",
        "dimensions",
        "document_count",
        "chunk_count",
        "created_at",
    )
    list_display_links = ("name",)
    list_select_related = ("tenant",)
    list_filter = ("tenant", "embedding_model")
    search_fields = ("name", "tenant__name")
    ordering = ("tenant__name", "name")
    fields = (
        "tenant",
        "name",
        "description",
        "embedding_model",
        "dimensions",
        "document_count",
        "chunk_count",
        "created_at",
        "id",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Collection]:
        """Collections with their numbers of documents and chunks (one join)."""
        return (
            super()
            .get_queryset(request)
            .annotate(_documents=Count("documents"), _chunks=Sum("documents__chunk_count"))
        )

    @admin.display(description="documents", ordering="_documents")
    def document_count(self, collection: Collection) -> str:
        """How many documents, linking to them."""
        count = int(getattr(collection, "_documents", 0) or 0)
        return _changelist_link(Document, str(count), collection__id__exact=collection.pk)

    @admin.display(description="chunks", ordering="_chunks")
    def chunk_count(self, collection: Collection) -> str:
        """How many chunks (and vectors), linking to them."""
        count = int(getattr(collection, "_chunks", 0) or 0)
        return _changelist_link(Chunk, str(count), collection__id__exact=collection.pk)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> DeletedObjects:
        """What deleting ``objs`` removes, counted (not Django's walk over every chunk)."""
        collections = list(objs)
        ids = [obj.pk for obj in collections]
        documents = Document.objects.filter(collection_id__in=ids).count()
        chunks = Chunk.objects.filter(collection_id__in=ids).count()
        listed = _deletion_summary(
            "Collection",
            collections,
            [_plural(documents, "document"), _chunks_with_vectors(chunks)],
        )
        counts = {"collections": len(ids), "documents": documents, "chunks": chunks}
        return listed, counts, set(), []

    def delete_model(self, request: HttpRequest, obj: Collection) -> None:
        """Delete the collection through the core: its documents, chunks, vectors and postings."""
        _delete_collections([obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Collection]) -> None:
        """Delete each selected collection through the core (the bulk "delete" action)."""
        _delete_collections(queryset.select_related("tenant"))


def _delete_collections(collections: Any) -> None:
    stack = get_stack()
    for collection in list(collections):
        # NotFound: deleted meanwhile (by the API, or in another admin page).
        with contextlib.suppress(NotFound):
            stack.call(stack.stack.rag.delete_collection, collection.tenant.name, collection.name)


@admin.register(Document)
class DocumentAdmin(_ReadOnlyAdmin):
    """RAG documents; deleted through the core, with their chunks, vectors and postings."""

    list_display = (
        "external_id",
        "title",
        "collection",
        "source",
        "source_type",
        "chunk_count",
        "characters",
        "updated_at",
    )
    list_select_related = ("collection__tenant",)
    list_filter = ("collection", "source_type")
    search_fields = ("external_id", "title", "source")
    ordering = ("-updated_at",)
    fields = (
        "external_id",
        "title",
        "collection",
        "source",
        "source_type",
        "metadata",
        "characters",
        "chunks",
        "chunk_size",
        "chunk_overlap",
        "content_sha256",
        "created_at",
        "updated_at",
        "id",
    )
    readonly_fields = fields

    @admin.display(description="chunks")
    def chunks(self, document: Document) -> str:
        """How many chunks, linking to them."""
        return _changelist_link(
            Chunk, _plural(document.chunk_count, "chunk"), document__id__exact=document.pk
        )

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> DeletedObjects:
        """What deleting ``objs`` removes, counted (not Django's walk over every chunk)."""
        documents = list(objs)
        chunks = Chunk.objects.filter(document_id__in=[obj.pk for obj in documents]).count()
        listed = _deletion_summary("Document", documents, [_chunks_with_vectors(chunks)])
        return listed, {"documents": len(documents), "chunks": chunks}, set(), []

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        """Delete the document through the core: its chunks, vectors and postings go too."""
        _delete_documents([obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        """Delete each selected document through the core (the bulk "delete" action)."""
        _delete_documents(queryset.select_related("collection__tenant"))


def _delete_documents(documents: Any) -> None:
    stack = get_stack()
    for document in list(documents):
        collection = document.collection
        # NotFound: deleted meanwhile (with its collection, by the API, in another admin page).
        with contextlib.suppress(NotFound):
            stack.call(
                stack.stack.rag.delete_document,
                collection.tenant.name,
                collection.name,
                document.external_id,
            )


@admin.register(Chunk)
class ChunkAdmin(_ReadOnlyAdmin):
    """RAG chunks (without their vectors); searchable by text. They go with their document."""

    list_display = ("preview", "document_link", "collection", "position", "page", "token_count")
    list_select_related = ("document", "collection__tenant")
    list_filter = ("collection",)
    search_fields = ["content"]  # ILIKE: fine at admin scale
    ordering = ("document_id", "position")
    show_full_result_count = False
    fields = (
        "document",
        "collection",
        "position",
        "page",
        "char_start",
        "char_end",
        "token_count",
        "lexeme_count",
        "dimensions",
        "content",
        "id",
    )
    readonly_fields = fields

    @admin.display(description="document", ordering="document__external_id")
    def document_link(self, chunk: Chunk) -> str:
        """The chunk's document, linking to its page."""
        url = reverse("admin:synthstack_django_document_change", args=[chunk.document_id])
        return format_html('<a href="{}">{}</a>', url, str(chunk.document))

    @admin.display(description="content")
    def preview(self, chunk: Chunk) -> str:
        """The chunk's first 100 characters."""
        return Truncator(" ".join(chunk.content.split())).chars(100)

    def has_delete_permission(self, request: HttpRequest, obj: Chunk | None = None) -> bool:
        """Never: a chunk goes with its document (re-index or delete the document)."""
        return False


# ------------------------------------------------------------------------------------ jobs


@admin.register(Job)
class JobAdmin(_ReadOnlyAdmin):
    """Jobs, newest first, with their progress and error; cancelled through the core."""

    list_display = ("id", "tenant", "kind", "status", "progress", "attempts", "created_at")
    list_select_related = ("tenant",)
    list_filter = ("status", "kind")
    ordering = ("-created_at",)
    actions = ["cancel_jobs"]
    fields = (
        "id",
        "tenant",
        "kind",
        "status",
        "progress_done",
        "progress_total",
        "progress_unit",
        "attempts",
        "provider_failures",
        "created_at",
        "started_at",
        "stored_at",
        "finished_at",
        "result",
        "error",
        "request_id",
    )
    readonly_fields = fields

    @admin.display(description="progress")
    def progress(self, job: Job) -> str:
        """``done / total unit`` (total unknown until the job has split its document)."""
        total = "?" if job.progress_total is None else str(job.progress_total)
        return f"{job.progress_done} / {total} {job.progress_unit}"

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        """Never: finished jobs are purged after the retention; running ones are cancelled."""
        return False

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        """Cancel each selected queued or running job through the core (ended ones are left)."""
        stack = get_stack()
        cancelled = 0
        for job in list(queryset.select_related("tenant")):
            with contextlib.suppress(Conflict, NotFound):
                stack.call(stack.stack.jobs.cancel, job.tenant.name, job.id)
                cancelled += 1
        text = f"Cancelled {_plural(cancelled, 'job')}."
        if cancelled < queryset.count():
            text += f" {queryset.count() - cancelled} had ended already."
        self.message_user(request, text, messages.SUCCESS)


admin.site.site_header = "SynthStack administration"
admin.site.site_title = "SynthStack admin"
admin.site.index_title = "Tenants, API keys, usage and RAG collections"
