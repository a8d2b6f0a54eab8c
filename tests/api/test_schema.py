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
