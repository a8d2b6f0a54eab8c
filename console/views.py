"""The staff console's pages. Thin: each calls the services and selectors the JSON API uses,
and the pages' scripts call the JSON API itself (preview, send, status, cancel)."""

import uuid
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from console import labels
from console.academies import academies_of, choose_academy, current_academy
from messaging.api.exports import csv_response
from messaging.compose.refusals import Refusal
from messaging.compose.resend import retry_failures_of, retryable_failures
from messaging.failures import FailureClass
from messaging.models import FINAL_STATUSES, MessageStatus, SendRequest
from messaging.selectors import (
    credit_summary,
    iter_message_rows,
    message_rows,
    messages_for,
    send_request_detail,
    send_request_of,
    send_request_status,
    send_request_summary,
    send_requests_for,
)
from tenants.models import TemplateStatus
from tenants.selectors import classes_for, templates_for

LOGIN_URL = "console:login"
HISTORY_PAGE_SIZE = 20
RECENT_LEDGER_ENTRIES = 20


def staff_page(view):
    """A page for a logged-in staff member acting for one academy (passed as `academy`).
    Without a picked academy the user is sent to pick one; with none at all, told so."""

    @login_required(login_url=LOGIN_URL)
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        academy = current_academy(request)
        if academy is None:
            return redirect("console:academies")
        return view(request, academy, *args, **kwargs)

    return wrapper


@login_required(login_url=LOGIN_URL)
def academies(request: HttpRequest) -> HttpResponse:
    mine = academies_of(request.user)
    if request.method == "POST":
        try:
            academy_id = int(request.POST.get("academy", ""))
        except ValueError:
            academy_id = 0
        if choose_academy(request, academy_id) is not None:
            return redirect("console:compose")
        messages.error(request, "소속된 학원을 선택해 주세요.")
    status = 200 if mine else 403
    return render(request, "console/academies.html", {"academies": mine}, status=status)


@staff_page
def compose(request: HttpRequest, academy) -> HttpResponse:
    return render(request, "console/compose.html", {
        "academy": academy,
        "credit": credit_summary(academy, recent=0),
        "templates": [
            {"id": t.solapi_template_id, "name": t.name, "content": t.content,
             "status": labels.TEMPLATE_STATUSES[t.status], "approved": t.status == TemplateStatus.APPROVED}
            for t in templates_for(academy)
        ],
        "classes": classes_for(academy),
        "send_to": labels.SEND_TO.items(),
        "labels": {"skip_reasons": labels.SKIP_REASONS, "types": labels.MESSAGE_TYPES},
        # One key per opened page: a double click, or a retried request, sends once (the API's replay).
        "idempotency_key": uuid.uuid4().hex,
    })


def _own_send_request(academy, send_request_id: int) -> SendRequest:
    try:
        return send_request_of(academy, send_request_id)
    except Refusal:
        raise Http404 from None


@staff_page
def watch(request: HttpRequest, academy, send_request_id: int) -> HttpResponse:
    send_request = _own_send_request(academy, send_request_id)
    detail = send_request_detail(send_request, page=1, page_size=1)
    return render(request, "console/watch.html", {
        "academy": academy,
        "send_request": send_request,
        "detail": detail,
        "status": send_request_status(send_request),
        "mode": labels.MODES.get(send_request.mode, send_request.mode),
        "purpose": labels.PURPOSES.get(send_request.purpose, send_request.purpose),
        "counts": [(status, label, detail["counts"].get(status, 0)) for status, label in labels.STATUSES.items()],
        "failed": failed_messages(send_request),
        # What staff cancelled, and the credit that came back (messaging/pipeline/cancellation.py).
        "cancelled": send_request.messages.filter(failure_class=FailureClass.CANCELLED).aggregate(
            count=Count("id"), credit=Sum("price")) if send_request.cancelled else None,
        "final_statuses": sorted(FINAL_STATUSES),
        "retryable": retryable_failures(send_request).count(),
        "status_url": reverse("send-request-detail", kwargs={"send_request_id": send_request.id}),
        "cancel_url": reverse("send-request-cancel", kwargs={"send_request_id": send_request.id}),
    })


def failed_messages(send_request: SendRequest, limit: int = 100) -> list[dict]:
    """The request's failures as the API shows them (masked numbers, Korean reasons); those
    cancelled by staff are counted apart, in the page's banner."""
    rows = messages_for(send_request, status=MessageStatus.FAILED).exclude(failure_class=FailureClass.CANCELLED)
    return [{**row, "recipient": labels.RECIPIENTS.get(row["recipient"], row["recipient"])}
            for row in message_rows(send_request, list(rows[:limit]))]


@staff_page
def export(request: HttpRequest, academy, send_request_id: int) -> HttpResponse:
    """The API's CSV, for the session's academy (a download link cannot send X-Tenant)."""
    send_request = _own_send_request(academy, send_request_id)
    return csv_response(iter_message_rows(send_request), filename=f"send-request-{send_request.id}.csv")


@require_POST
@staff_page
def retry(request: HttpRequest, academy, send_request_id: int) -> HttpResponse:
    send_request = _own_send_request(academy, send_request_id)
    again = retry_failures_of(send_request, user=request.user)
    if again is None:
        messages.info(request, "다시 보낼 수 있는 실패 메시지가 없습니다 "
                               "(이미 다시 보냈거나, 번호·내용 문제로 실패한 메시지입니다).")
        return redirect("console:watch", send_request_id=send_request.id)
    messages.success(request, f"실패한 메시지를 다시 보냅니다 (발송 #{again.id}).")
    return redirect("console:watch", send_request_id=again.id)


@staff_page
def history(request: HttpRequest, academy) -> HttpResponse:
    status = request.GET.get("status", "")
    if status not in labels.SEND_REQUEST_STATUSES:
        status = ""
    page = Paginator(send_requests_for(academy, status=status or None), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page"))
    credit = credit_summary(academy, recent=RECENT_LEDGER_ENTRIES)
    rows = [send_request_summary(r) for r in page.object_list]
    return render(request, "console/history.html", {
        "academy": academy,
        "page": page,
        "status": status,
        "statuses": labels.SEND_REQUEST_STATUSES,
        "rows": [{**row, "status_label": labels.SEND_REQUEST_STATUSES[row["status"]],
                  "mode": labels.MODES.get(row["mode"], row["mode"]),
                  "purpose": labels.PURPOSES.get(row["purpose"], row["purpose"])} for row in rows],
        "credit": credit,
        "ledger": [{**e, "kind": labels.LEDGER_KINDS.get(e["kind"], e["kind"])} for e in credit["ledger"]],
    })
