import re
from collections.abc import Callable, Iterable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from project import clock
from tenants.models import (
    CONSENT_VALID_FOR,
    AlimTalkTemplate,
    MarketingConsent,
    Membership,
    SchoolClass,
    Student,
    Tenant,
)
from tenants.phones import PHONE_IN_TEXT, mask_phone
from tenants.services import sender_register


class GuardedAdmin(admin.ModelAdmin):
    """The base of every admin here: an action is checked when it is run, not only listed.

    Django hides an action the user may not run, but a POST naming it anyway (a crafted
    form, a stale page, the top-up form's second step) only gets "no action selected".
    Here it gets 403, before the action runs. Every action declares `allowed_permissions`
    (tests/operations/test_admin_permissions.py checks that none is left open).
    """

    # Actions an operator also runs on one object, from a button on its page (the breaker's
    # "close", a message's "retry"). The button posts the action to the changelist as if the
    # object were the only one selected, so the same permission check and the same code run.
    object_actions: list[str] = []
    change_form_template = "admin/object_actions_change_form.html"

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST":
            requested = set(request.POST.getlist("action"))
            declared = {name for _, name, _ in self._get_base_actions()}
            if requested & (declared - set(self.get_actions(request))):
                raise PermissionDenied
        response = super().changelist_view(request, extra_context)
        if request.method == "POST" and request.POST.get(OBJECT_PAGE) and isinstance(response, HttpResponseRedirect):
            # Run from an object's page: back to that page (the action's message shows there).
            selected = request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
            if len(selected) == 1:
                opts = self.model._meta
                return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change",
                                                    args=[selected[0]], current_app=self.admin_site.name))
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        allowed = self.get_actions(request)
        opts = self.model._meta
        buttons = [{"name": name, "description": str(allowed[name][2])} for name in self.object_actions
                   if name in allowed]
        context = {**(extra_context or {}), "object_actions": buttons, "object_page_field": OBJECT_PAGE,
                   "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                   "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist",
                                             current_app=self.admin_site.name)}
        return super().change_view(request, object_id, form_url, context)


# The POST field that marks an action run from an object's page (GuardedAdmin.object_actions).
OBJECT_PAGE = "_object_page"


def custom_permission(permission: str):
    """A `has_<codename>_permission` method for an action's `allowed_permissions`,
    backed by a model's Meta.permissions entry ("app_label.codename")."""

    def has_permission(self, request) -> bool:
        return request.user.has_perm(permission)

    return has_permission


def record_action(request, objects: QuerySet | Iterable[Model], message: str) -> None:
    """Who did what from the admin: one LogEntry per object (its history page shows them)."""
    objects = list(objects)
    if objects:
        LogEntry.objects.log_actions(user_id=request.user.pk, queryset=objects, action_flag=CHANGE,
                                     change_message=message)


class ReadOnlyAdmin(GuardedAdmin):
    """Rows written by services only (the ledger, the pipeline): shown, never edited by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def masked_phone_column(field: str, description: str = "전화번호"):
    """A changelist column showing a phone number masked: operators are not the academy."""

    @admin.display(description=description)
    def column(self, obj) -> str:
        return mask_phone(getattr(obj, field))

    return column


# Four digits, never the whole number: a search term travels in the URL, and URLs are
# written to the web server's access log.
PHONE_SUFFIX = re.compile(r"\d{4}", re.ASCII)


class MaskedPhonesAdmin(GuardedAdmin):
    """Rows that carry phone numbers. A number is typed in when the row is added; after
    that the change form shows it masked (an input would print it into the page), and the
    search finds numbers by their last four digits only.

    `phone_fields` maps each phone field to the masked column that replaces it."""

    phone_fields: dict[str, str] = {}
    search_help_text = "전화번호는 뒤 4자리로 검색 (phone numbers: search by the last 4 digits)"

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        return exclude + list(self.phone_fields) if obj is not None else exclude

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly + list(self.phone_fields.values()) if obj is not None else readonly

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if PHONE_SUFFIX.fullmatch(term):
            matches = Q()
            for field in self.phone_fields:
                matches |= Q(**{f"{field}__endswith": term})
            return queryset.filter(matches), False
        if PHONE_IN_TEXT.search(term):
            self.message_user(request, "전화번호 전체로는 검색하지 않습니다. 뒤 4자리로 검색해 주세요. / Full phone "
                              "numbers are not searched (the URL is logged); search by the last 4 digits.",
                              messages.WARNING)
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)
def action_form_page(request: HttpRequest, model_admin: admin.ModelAdmin, queryset: QuerySet, form: forms.Form, *,
                     action: str, title: str, intro: str, submit: str,
                     describe: Callable[[object], str] = str) -> HttpResponse:
    """The intermediate page of an admin action that asks for input: the selected rows, the
    form, and a submit button named "apply" that posts the action again with the same rows."""
    return render(request, "admin/action_form.html", {
        "form": form, "rows": [(obj.pk, describe(obj)) for obj in queryset], "opts": model_admin.model._meta,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME, "title": title, "intro": intro,
        "action": action, "submit": submit, "object_page_field": OBJECT_PAGE,
        "object_page": request.POST.get(OBJECT_PAGE, ""),
    })


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(GuardedAdmin):
    list_display = ["name", "slug", "messaging_sender", "messaging_sender_status", "messaging_is_active", "created"]
    list_filter = ["messaging_sender_status", "messaging_is_active"]
    search_fields = ["name", "slug", "messaging_sender"]
    readonly_fields = ["messaging_sender_status_changed", "created"]
    inlines = [MembershipInline]
    actions = ["sender_registered_again"]
    object_actions = ["sender_registered_again"]

    has_reregister_sender_permission = custom_permission("tenants.reregister_sender")

    @admin.action(description="Sender number registered with Solapi again: allow sends (발신번호 재등록)",
                  permissions=["reregister_sender"])
    def sender_registered_again(self, request, queryset):
        tenants = list(queryset)
        for tenant in tenants:
            sender_register(tenant=tenant, number=tenant.messaging_sender)
        record_action(request, tenants, "sender registered again: sends allowed (발신번호 재등록)")
        self.message_user(request, f"{len(tenants)} academy(ies) may send again.")


@admin.register(Student)
class StudentAdmin(MaskedPhonesAdmin):
    list_display = ["name", "tenant", "grade", "masked_phone", "masked_parent_phone", "created"]
    list_filter = ["tenant", "grade", "classes"]
    search_fields = ["name"]
    phone_fields = {"phone": "masked_phone", "parent_phone": "masked_parent_phone"}
    masked_phone = masked_phone_column("phone", "학생 전화번호")
    masked_parent_phone = masked_phone_column("parent_phone", "학부모 전화번호")


class SchoolClassForm(forms.ModelForm):
    class Meta:
        model = SchoolClass
        fields = ["tenant", "name", "students"]

    def clean(self):
        data = super().clean()
        tenant, students = data.get("tenant"), data.get("students")
        # A class is one academy's: another academy's students are never its members.
        if tenant and students is not None and students.exclude(tenant=tenant).exists():
            raise forms.ValidationError("다른 학원의 학생은 이 반에 넣을 수 없습니다 "
                                        "(students of another academy cannot join this class).")
        return data


@admin.register(SchoolClass)
class SchoolClassAdmin(GuardedAdmin):
    form = SchoolClassForm
    list_display = ["name", "tenant", "student_count", "created"]
    list_filter = ["tenant"]
    search_fields = ["name"]
    # A picker, not a list of every student of every academy.
    autocomplete_fields = ["students"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(student_total=Count("students"))

    @admin.display(description="학생 수", ordering="student_total")
    def student_count(self, obj) -> int:
        return obj.student_total


@admin.register(AlimTalkTemplate)
class AlimTalkTemplateAdmin(GuardedAdmin):
    list_display = ["name", "tenant", "solapi_template_id", "status", "created"]
    list_filter = ["status", "tenant"]
    search_fields = ["name", "solapi_template_id"]


class DueForReconfirmation(admin.SimpleListFilter):
    title = "재확인 (2년) (re-confirmation)"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("yes", "재확인 필요: 2년 이상 (due)")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(withdrawn_at__isnull=True,
                                   marketing_consented_at__lte=clock.now() - CONSENT_VALID_FOR)
        return queryset


@admin.register(MarketingConsent)
class MarketingConsentAdmin(GuardedAdmin):
    list_display = ["student", "recipient", "marketing_consented_at", "night_consented_at", "withdrawn_at"]
    list_filter = [DueForReconfirmation, "recipient"]
    search_fields = ["student__name"]
    autocomplete_fields = ["student"]
