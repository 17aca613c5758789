"""The Django admin over the core's tenants and API keys.

Tenants are plain rows. API keys go through the core: adding one in the admin calls
``api_keys.create`` (which generates the secret and stores only its hash) and shows the secret once,
in a message; the "Revoke selected keys" action calls ``api_keys.revoke``. Existing keys are
read-only, and the stored hash is never displayed.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from synthstack_django.models import ApiKey, Tenant
from synthstack_django.service import get_stack

__all__ = ["ApiKeyAdmin", "TenantAdmin"]


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


admin.site.site_header = "SynthStack administration"
admin.site.site_title = "SynthStack admin"
admin.site.index_title = "Tenants and API keys"
