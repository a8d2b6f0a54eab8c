from django.contrib import admin

from tenants.models import AlimTalkTemplate, Membership, Student, Tenant
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
