"""Request bodies over DATA_UPLOAD_MAX_MEMORY_SIZE are answered 413 {code, detail} in JSON.

Django enforces the limit only where it reads the body itself (request.body, request.POST)
and answers with an HTML 400; DRF's parsers read the stream directly and do not enforce it
at all. Checking the declared length before anything reads the body covers both.
"""

import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

from messaging.compose.refusals import Refusal, RefusalCode


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and _declared_length(request) > limit:
            return too_large(limit)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # A body Django measured itself (no Content-Length up front, e.g. a form field total).
        if isinstance(exception, RequestDataTooBig):
            return too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        return None


def too_large(limit: int) -> HttpResponse:
    refusal = Refusal(RefusalCode.REQUEST_TOO_LARGE, limit=limit, extra={"limit": limit})
    return HttpResponse(json.dumps(refusal.as_body(), ensure_ascii=False), status=refusal.status,
                        content_type="application/json")


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
