"""The OpenAPI schema and its docs page are served, and describe the send API."""

import json

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_answers_200_and_lists_the_messaging_endpoints():
    response = APIClient().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert {"/api/v1/messages/send", "/api/v1/messages/preview", "/api/v1/messages/send-requests/{send_request_id}",
            "/api/v1/credits"} <= set(paths)
    # The webhook's secret path segment stays out of the published schema.
    assert not any("solapi" in path for path in paths)


def test_the_yaml_schema_answers_200():
    response = APIClient().get("/api/schema/")

    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


def test_the_docs_page_answers_200_without_a_cdn():
    response = APIClient().get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    # Swagger UI comes from the sidecar package, so the page works offline.
    assert b"cdn.jsdelivr.net" not in response.content


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_with_docs_not_public_only_staff_read_them(settings, admin_client, url):
    settings.API_DOCS_PUBLIC = False

    assert APIClient().get(url).status_code == 401
    assert admin_client.get(url).status_code == 200


def test_docs_are_not_public_by_default_with_debug_off():
    """The default, read from a fresh settings module with DEBUG off."""
    import subprocess
    import sys

    from django.conf import settings

    env = {"DEBUG": "0", "DJANGO_SECRET_KEY": "k" * 50, "SOLAPI_API_KEY": "k", "SOLAPI_API_SECRET": "s",
           "SOLAPI_WEBHOOK_SECRET": "w" * 32, "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", "import project.settings as s; print(s.API_DOCS_PUBLIC)"],
                            env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60)

    assert result.stdout.strip() == "False", result.stderr
