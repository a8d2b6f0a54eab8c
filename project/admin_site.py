"""The operations console's admin site: the pipeline's internals in a section of their own.

An operator's everyday pages are the academies, their sends and messages, credit and the
ledger. The tables the pipeline keeps for itself (chunks, Solapi calls, delivery reports,
task results, heartbeats, the breaker, books reconciliation, the rate row) are listed apart,
under "운영 (operations)", at the end of the index and of the side bar. Each model keeps its
app (its URL, its permissions, its breadcrumbs): only the listing moves.
"""

from django.contrib import admin
from django.http import Http404, HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse

OPERATIONS = "operations"
OPERATIONS_NAME = "운영 (operations)"
# Models by label_lower.
INTERNALS = frozenset({
    "messaging.chunk",
    "messaging.deliveryattempt",
    "messaging.deliveryreport",
    "messaging.circuitbreaker",
    "messaging.groupreconciliation",
    "messaging.workerheartbeat",
    "messaging.alertstate",
    "messaging.requestrate",
    "django_celery_results.taskresult",
    "django_celery_results.groupresult",
})


class ConsoleAdminSite(admin.AdminSite):
    site_header = "학원 메시징 운영 콘솔"
    site_title = "학원 메시징"
    index_title = "운영 콘솔 (operations console)"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        """The index and the side bar: internals moved into the operations section, last.
        An app's own page (app_label given) still lists all of its models."""
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        internals = []
        for app in apps:
            internals += [m for m in app["models"] if m["model"]._meta.label_lower in INTERNALS]
            app["models"] = [m for m in app["models"] if m["model"]._meta.label_lower not in INTERNALS]
        apps = [app for app in apps if app["models"]]
        if internals:
            apps.append({
                "name": OPERATIONS_NAME, "app_label": OPERATIONS, "has_module_perms": True,
                "app_url": reverse(f"{self.name}:{OPERATIONS}_index", current_app=self.name),
                "models": sorted(internals, key=lambda m: m["name"]),
            })
        return apps

    def get_urls(self):
        return [path(f"{OPERATIONS}/", self.admin_view(self.operations_index), name=f"{OPERATIONS}_index"),
                *super().get_urls()]

    def operations_index(self, request: HttpRequest) -> TemplateResponse:
        section = [app for app in self.get_app_list(request) if app["app_label"] == OPERATIONS]
        if not section:
            raise Http404("No operations pages for this user.")
        context = {**self.each_context(request), "title": OPERATIONS_NAME, "subtitle": None, "app_list": section,
                   "app_label": OPERATIONS}
        request.current_app = self.name
        return TemplateResponse(request, "admin/app_index.html", context)
