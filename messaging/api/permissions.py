"""Who may read the API's description."""

from django.conf import settings
from rest_framework.permissions import BasePermission


class ApiDocsAccess(BasePermission):
    """/api/schema/ and /api/docs/: anyone when API_DOCS_PUBLIC is on (the default with DEBUG),
    staff only otherwise. Read per request, so the setting needs no URL reload."""

    def has_permission(self, request, view) -> bool:
        return settings.API_DOCS_PUBLIC or bool(request.user and request.user.is_active and request.user.is_staff)
