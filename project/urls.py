from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from messaging.api.permissions import ApiDocsAccess
from project.health.views import healthz
from project.metrics import metrics_view

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("messaging.api.urls")),
    path("app/", include("console.urls")),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[ApiDocsAccess]), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[ApiDocsAccess]),
         name="docs"),
]
# Serves the admin's and the docs page's static files when DEBUG is on (make run uses gunicorn).
urlpatterns += staticfiles_urlpatterns()
