from django.contrib import admin
from django.utils import timezone

from tenants.models import CONSENT_VALID_FOR, AlimTalkTemplate, MarketingConsent, Membership, Student, Tenant
from tenants.phones import mask_phone
from tenants.services import sender_register


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by services only (the ledger, the pipeline): shown, never edited by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def masked_phone_column(field: str, description: str = "phone"):
    """A changelist column showing a phone number masked: operators are not the academy."""

    @admin.display(description=description)
    def column(self, obj) -> str:
        return mask_phone(getattr(obj, field))

    return column


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "messaging_sender", "messaging_sender_status", "messaging_is_active", "created"]
    list_filter = ["messaging_sender_status", "messaging_is_active"]
    search_fields = ["name", "slug", "messaging_sender"]
    readonly_fields = ["messaging_sender_status_changed", "created"]
    inlines = [MembershipInline]
    actions = ["sender_registered_again"]

    @admin.action(description="Sender number registered with Solapi again: allow sends (발신번호 재등록)")
    def sender_registered_again(self, request, queryset):
        for tenant in queryset:
            sender_register(tenant=tenant, number=tenant.messaging_sender)
        self.message_user(request, f"{queryset.count()} academy(ies) may send again.")


@admin.register(Student)
class StudentAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "masked_phone", "masked_parent_phone", "created"]
    list_filter = ["tenant"]
    search_fields = ["name"]
    masked_phone = masked_phone_column("phone")
    masked_parent_phone = masked_phone_column("parent_phone", "parent phone")


@admin.register(AlimTalkTemplate)
class AlimTalkTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "solapi_template_id", "status", "created"]
    list_filter = ["status", "tenant"]
    search_fields = ["name", "solapi_template_id"]


class DueForReconfirmation(admin.SimpleListFilter):
    title = "re-confirmation (2 years)"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("yes", "due (2 years or older)")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(withdrawn_at__isnull=True,
                                   marketing_consented_at__lte=timezone.now() - CONSENT_VALID_FOR)
        return queryset


@admin.register(MarketingConsent)
class MarketingConsentAdmin(admin.ModelAdmin):
    list_display = ["student", "recipient", "marketing_consented_at", "night_consented_at", "withdrawn_at"]
    list_filter = [DueForReconfirmation, "recipient"]
    search_fields = ["student__name"]
    autocomplete_fields = ["student"]
