"""The delivery-report webhook's secret never reaches a log line: the web process of the
Procfile runs here, a real gunicorn, and everything it writes is read back (docs/security.md
section 4). The secret is accepted in the X-Webhook-Secret header as well as in the path."""

import logging
import re
import time

import httpx
import pytest
from django.conf import settings

from project.logging import MASKED_SECRET

SECRET = settings.SOLAPI_WEBHOOK_SECRET


@pytest.fixture
def web(procfile_gunicorn):
    """The Procfile's web process on a free port, with one worker."""
    return procfile_gunicorn("web", "WEB_BIND", {"SOLAPI_WEBHOOK_SECRET": SECRET})


def test_no_log_line_of_the_web_process_holds_the_secret(web):
    url, written = web
    near_miss = SECRET[:-1] + "x"
    answers = {
        "path": httpx.post(f"{url}/api/v1/solapi/reports/{SECRET}/", json=[]).status_code,
        "header": httpx.post(f"{url}/api/v1/solapi/reports/", json=[], headers={"X-Webhook-Secret": SECRET})
        .status_code,
        "malformed": httpx.post(f"{url}/api/v1/solapi/reports/{SECRET}/", json={"not": "a report"}).status_code,
        "wrong path": httpx.post(f"{url}/api/v1/solapi/reports/{near_miss}/", json=[]).status_code,
        "wrong header": httpx.post(f"{url}/api/v1/solapi/reports/", json=[], headers={"X-Webhook-Secret": near_miss})
        .status_code,
        "no secret": httpx.post(f"{url}/api/v1/solapi/reports/", json=[]).status_code,
    }
    # An admin search for a whole number puts it in the URL: the access log masks it too.
    httpx.get(f"{url}/admin/tenants/student/?q=01012345678")
    # The access log is written after the response: wait for the last request's line.
    deadline = time.monotonic() + 30
    while ("/admin/tenants/student/" not in written() or written().count("/api/v1/solapi/reports/") < len(answers)) \
            and time.monotonic() < deadline:
        time.sleep(0.1)

    logged = written()
    assert answers == {"path": 200, "header": 200, "malformed": 400, "wrong path": 404, "wrong header": 404,
                       "no secret": 404}
    assert SECRET not in logged and near_miss not in logged
    assert "01012345678" not in logged and "q=010****5678" in logged
    access = [line for line in logged.splitlines() if "logger=gunicorn.access" in line]
    assert len([line for line in access if f"/api/v1/solapi/reports/{MASKED_SECRET}/" in line]) == 3, logged
    # Django's request log names the path of the 4xx answers, masked too.
    assert re.search(rf"logger=django.request .*Bad Request: /api/v1/solapi/reports/{re.escape(MASKED_SECRET)}/",
                     logged), logged


def test_djangos_request_log_and_extra_fields_are_masked_in_process(client, transactional_db):
    handler = next(h for h in logging.getLogger().handlers if h.filters)
    records = []

    def keep(record: logging.LogRecord) -> bool:  # after the masking filters: what is written
        records.append(handler.format(record))
        return True

    handler.addFilter(keep)
    try:
        client.post(f"/api/v1/solapi/reports/{SECRET}/", data={"not": "a report"}, content_type="application/json")
        logging.getLogger("messaging.test").warning("a secret %s in %s", SECRET, {"url": f"/x/{SECRET}"},
                                                    extra={"request": f"<POST /api/v1/solapi/reports/{SECRET}/>"})
    finally:
        handler.removeFilter(keep)

    assert len(records) == 2, records
    assert all(SECRET not in line and MASKED_SECRET in line for line in records), records
