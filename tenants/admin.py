from django.contrib import admin
from django.utils import timezone

from tenants.models import CONSENT_VALID_FOR, AlimTalkTemplate, MarketingConsent, Membership, Student, Tenant
from tenants.phones import mask_phone


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


@admin.register(Student)
class StudentAdmin(admin.ModelAdmin):
    # The platform's operators are not the academy: numbers are masked in lists.
    list_display = ["name", "tenant", "masked_phone", "masked_parent_phone", "created"]
    list_filter = ["tenant"]
    search_fields = ["name"]

    @admin.display(description="phone")
    def masked_phone(self, student: Student) -> str:
        return mask_phone(student.phone)

    @admin.display(description="parent phone")
    def masked_parent_phone(self, student: Student) -> str:
        return mask_phone(student.parent_phone)


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
