"""The messaging API. Views are thin: parse, call one service or selector, answer."""

import hmac
from dataclasses import asdict

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging import metrics
from messaging.api.answers import with_api_times
from messaging.api.authentication import TENANT_HEADER
from messaging.api.exports import csv_response
from messaging.api.paging import envelope, page_of
from messaging.api.serializers import (
    CancelOutcomeSerializer,
    ConsentInputSerializer,
    ConsentSerializer,
    CreditsSerializer,
    ErrorSerializer,
    MessagePageSerializer,
    MessageQuerySerializer,
    MessageRowSerializer,
    OptOutInputSerializer,
    OptOutSerializer,
    PreviewSerializer,
    SchoolClassSerializer,
    SendAcceptedSerializer,
    SendInputSerializer,
    SendRequestDetailSerializer,
    SendRequestPageSerializer,
    SendRequestQuerySerializer,
    SendRequestSummarySerializer,
    StudentPageSerializer,
    StudentQuerySerializer,
    StudentSerializer,
    TemplateSerializer,
)
from messaging.api.tenancy import TenantAPIView
from messaging.api.validation import validated
from messaging.compose import suppression
from messaging.compose.planning import variables_of
from messaging.compose.previews import preview_send
from messaging.compose.refusals import Refusal, RefusalCode
from messaging.compose.send_requests import send_request_create
from messaging.models import SendRequest, SuppressionReason
from messaging.pipeline.cancellation import cancel_send_request
from messaging.reports import inbox
from messaging.selectors import (
    consents_due_for_reconfirmation,
    credit_summary,
    iter_message_rows,
    message_rows,
    messages_for,
    send_request_detail,
    send_request_of,
    send_request_summary,
    send_requests_for,
)
from messaging.solapi.reports import InvalidReportPayload, TooManyReports, check_envelope
from tenants.models import SchoolClass, Student, TemplateStatus
from tenants.phones import InvalidPhone, normalize_phone
from tenants.selectors import classes_for, student_rows, students_for, templates_for
from tenants.services import consent_record

TENANT_PARAMETER = OpenApiParameter(
    TENANT_HEADER, location=OpenApiParameter.HEADER, required=False,
    description="The academy's slug; optional when the user belongs to one academy only.",
)
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key", location=OpenApiParameter.HEADER, required=False,
    description="At most 100 characters. Replaying a key returns the first answer; the same key with a different "
                "body is 422.",
)
ERRORS = {code: ErrorSerializer for code in (400, 401, 402, 404, 413, 422, 429)}
LIST_ERRORS = {code: ErrorSerializer for code in (400, 401, 404, 429)}
REFUSAL_CODES = frozenset(RefusalCode)
MAX_IDEMPOTENCY_KEY_LENGTH = SendRequest._meta.get_field("idempotency_key").max_length


class SendMessageApi(TenantAPIView):
    @extend_schema(request=SendInputSerializer, responses={202: SendAcceptedSerializer, **ERRORS},
                   parameters=[TENANT_PARAMETER, IDEMPOTENCY_PARAMETER],
                   summary="Send a message to students or parents")
    def post(self, request):
        serializer = validated(SendInputSerializer, request.data)
        key = _idempotency_key(request)
        result = send_request_create(tenant=self.tenant, user=request.user, data=serializer.to_send_input(),
                                     idempotency_key=key)
        return Response({**result, "status_url": _status_url(result["id"])}, status=status.HTTP_202_ACCEPTED)

    def finalize_response(self, request, response, *args, **kwargs):
        # Every answer passes here, refusals raised before post() (authentication, throttles,
        # the tenant) included: the one place to count accepted and refused sends.
        metrics.record_send_answer(response.status_code, getattr(response, "data", None), REFUSAL_CODES)
        return super().finalize_response(request, response, *args, **kwargs)


class PreviewMessageApi(TenantAPIView):
    @extend_schema(request=SendInputSerializer, responses={200: PreviewSerializer, **ERRORS},
                   parameters=[TENANT_PARAMETER], summary="Preview a send: texts, types, prices; no side effects")
    def post(self, request):
        serializer = validated(SendInputSerializer, request.data)
        return Response(preview_send(tenant=self.tenant, data=serializer.to_send_input()))


class SendRequestDetailApi(TenantAPIView):
    @extend_schema(responses={200: SendRequestDetailSerializer, 404: ErrorSerializer},
                   summary="A send request's progress, message by message",
                   parameters=[TENANT_PARAMETER, OpenApiParameter("page", int), OpenApiParameter("page_size", int)])
    def get(self, request, send_request_id: int):
        send_request = send_request_of(self.tenant, send_request_id)
        page = _int_param(request, "page", 1)
        page_size = _int_param(request, "page_size", 100)
        detail = send_request_detail(send_request, page=page, page_size=page_size)
        return Response(with_api_times(detail))


class SendRequestListApi(TenantAPIView):
    @extend_schema(parameters=[TENANT_PARAMETER, SendRequestQuerySerializer],
                   responses={200: SendRequestPageSerializer, **LIST_ERRORS},
                   operation_id="v1_messages_send_requests_list", summary="Past and running sends, newest first")
    def get(self, request):
        query = validated(SendRequestQuerySerializer, request.query_params.dict()).validated_data
        requests = send_requests_for(self.tenant, status=query["status"], purpose=query["purpose"],
                                     created_from=query["created_from"], created_to=query["created_to"])
        rows, total = page_of(requests, page=query["page"], page_size=query["page_size"])
        results = [{**send_request_summary(r), "status_url": _status_url(r.id)} for r in rows]
        return Response(envelope(SendRequestSummarySerializer(results, many=True).data, page=query["page"],
                                 page_size=query["page_size"], total=total))


class SendRequestMessagesApi(TenantAPIView):
    @extend_schema(parameters=[TENANT_PARAMETER, MessageQuerySerializer],
                   responses={200: MessagePageSerializer, **LIST_ERRORS},
                   summary="A send request's messages: who, the masked number, the text, the outcome in Korean")
    def get(self, request, send_request_id: int):
        send_request = send_request_of(self.tenant, send_request_id)
        query = validated(MessageQuerySerializer, request.query_params.dict()).validated_data
        messages = messages_for(send_request, status=query["status"], failure_class=query["failure_class"])
        rows, total = page_of(messages, page=query["page"], page_size=query["page_size"])
        results = MessageRowSerializer(message_rows(send_request, rows), many=True).data
        return Response(envelope(results, page=query["page"], page_size=query["page_size"], total=total))


class SendRequestExportApi(TenantAPIView):
    @extend_schema(parameters=[TENANT_PARAMETER], responses={(200, "text/csv"): str, 404: ErrorSerializer},
                   summary="Every message's outcome as CSV (UTF-8 with BOM, for Excel)")
    def get(self, request, send_request_id: int):
        send_request = send_request_of(self.tenant, send_request_id)
        return csv_response(iter_message_rows(send_request), filename=f"send-request-{send_request.id}.csv")


class SendRequestCancelApi(TenantAPIView):
    @extend_schema(request=None, responses={200: CancelOutcomeSerializer, 404: ErrorSerializer},
                   parameters=[TENANT_PARAMETER], summary="Stop a send: cancel what has not gone to Solapi")
    def post(self, request, send_request_id: int):
        outcome = cancel_send_request(self.tenant, send_request_id, user=request.user)
        return Response(CancelOutcomeSerializer({**asdict(outcome), "status_url": _status_url(send_request_id)}).data)


class CreditsApi(TenantAPIView):
    @extend_schema(responses={200: CreditsSerializer}, parameters=[TENANT_PARAMETER],
                   summary="Credit balance, holds and ledger")
    def get(self, request):
        return Response(with_api_times(credit_summary(self.tenant)))


WEBHOOK_SECRET_HEADER = "X-Webhook-Secret"


class SolapiReportWebhook(APIView):
    """Solapi's single-report webhook. Solapi signs nothing, so an unguessable secret is the
    credential: in the X-Webhook-Secret header, or as the path segment (what a webhook URL
    alone can carry). A wrong or missing one looks like any unknown URL. Logs mask both
    forms (project/logging.py)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Solapi's report traffic follows our own sends; throttling it would only make it retry.
    throttle_classes: list = []

    @extend_schema(exclude=True)
    def post(self, request, secret: str = ""):
        given = secret or request.headers.get(WEBHOOK_SECRET_HEADER, "")
        # Constant time: how much of a guess matched must not show in how long the answer takes.
        if not given or not hmac.compare_digest(given.encode(), settings.SOLAPI_WEBHOOK_SECRET.encode()):
            raise Refusal(RefusalCode.NOT_FOUND)
        try:
            body = check_envelope(request.data)
        except InvalidReportPayload as exc:
            raise Refusal(RefusalCode.INVALID_REQUEST, errors=str(exc)) from None
        except TooManyReports as exc:
            raise Refusal(RefusalCode.TOO_MANY_ITEMS, field="reports", count=exc.count, limit=exc.limit,
                          extra={"field": "reports", "count": exc.count, "limit": exc.limit}) from None
        # Stored, then 200: what becomes of each report is decided after the answer, by a task
        # (messaging/reports/inbox.py), so Solapi never waits for row locks and credit moves.
        # 200 whatever that will be: Solapi re-sends a batch that is not answered 200, and a
        # report that cannot be used would not be any better the second time.
        # The batch's id, for finding it (admin, logs); None for an empty POST, which stores nothing.
        batch = inbox.store(body) if body else None
        return Response({"received": len(body), "batch": batch.id if batch else None})


def _status_url(send_request_id: int) -> str:
    return reverse("send-request-detail", kwargs={"send_request_id": send_request_id})


def _idempotency_key(request) -> str | None:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        # Cutting it would make two different keys one, and the second send a "replay".
        message = f"at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
        raise Refusal(RefusalCode.INVALID_REQUEST, errors=f"Idempotency-Key: {message}",
                      extra={"errors": {"Idempotency-Key": [message]}})
    return key or None


def _int_param(request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name, default))
    except ValueError:
        raise Refusal(RefusalCode.INVALID_REQUEST, errors=f"{name} must be a whole number") from None


class ConsentApi(TenantAPIView):
    """Record a student's or parent's answer to the advertising consent."""

    @extend_schema(request=ConsentInputSerializer, responses={200: ConsentSerializer, **ERRORS},
                   parameters=[TENANT_PARAMETER], summary="Record marketing (and night) consent")
    def post(self, request):
        serializer = validated(ConsentInputSerializer, request.data)
        data = serializer.validated_data
        student = Student.objects.filter(tenant=self.tenant, id=data["student_id"]).first()
        if student is None:
            raise Refusal(RefusalCode.STUDENT_NOT_FOUND, student_ids=data["student_id"],
                          extra={"student_ids": [data["student_id"]]})
        consent = consent_record(student=student, recipient=data["recipient"], marketing=data["marketing"],
                                 night=data["night"])
        return Response(ConsentSerializer(consent).data)


class ConsentsDueApi(TenantAPIView):
    @extend_schema(responses={200: ConsentSerializer(many=True)}, parameters=[TENANT_PARAMETER],
                   summary="Consents two years old or older, to re-confirm (§50⑧)")
    def get(self, request):
        return Response(ConsentSerializer(consents_due_for_reconfirmation(self.tenant), many=True).data)


class OptOutApi(TenantAPIView):
    """A recipient asked staff to stop messages (e.g. by phone): the number is suppressed."""

    @extend_schema(request=OptOutInputSerializer, responses={201: OptOutSerializer, **ERRORS},
                   parameters=[TENANT_PARAMETER],
                   summary="Add a number to the academy's suppression list")
    def post(self, request):
        serializer = validated(OptOutInputSerializer, request.data)
        try:
            phone = normalize_phone(serializer.validated_data["phone"])
        except InvalidPhone:
            phone = ""
        if not phone:
            raise Refusal(RefusalCode.INVALID_REQUEST, errors="phone: not a Korean phone number",
                          extra={"errors": {"phone": ["not a Korean phone number"]}})
        entry = suppression.suppress(tenant_id=self.tenant.id, phone=phone, reason=SuppressionReason.OPTED_OUT)
        return Response(OptOutSerializer({"phone": entry.phone, "reason": entry.reason, "source": entry.source}).data,
                        status=status.HTTP_201_CREATED)


class StudentListApi(TenantAPIView):
    @extend_schema(parameters=[TENANT_PARAMETER, StudentQuerySerializer],
                   responses={200: StudentPageSerializer, **LIST_ERRORS},
                   summary="The academy's students: search by name or phone ending, filter, page")
    def get(self, request):
        query = validated(StudentQuerySerializer, request.query_params.dict()).validated_data
        if query["class_id"] is not None and not SchoolClass.objects.filter(tenant=self.tenant,
                                                                            id=query["class_id"]).exists():
            raise Refusal(RefusalCode.CLASS_NOT_FOUND, class_ids=query["class_id"],
                          extra={"class_ids": [query["class_id"]]})
        students = students_for(self.tenant, search=query["search"], class_id=query["class_id"],
                                grade=query["grade"], has_parent_phone=query["has_parent_phone"],
                                consent=query["consent"])
        rows, total = page_of(students, page=query["page"], page_size=query["page_size"])
        return Response(envelope(StudentSerializer(student_rows(rows), many=True).data, page=query["page"],
                                 page_size=query["page_size"], total=total))


class ClassListApi(TenantAPIView):
    @extend_schema(parameters=[TENANT_PARAMETER], responses={200: SchoolClassSerializer(many=True)},
                   summary="The academy's classes (반), with their number of students")
    def get(self, request):
        return Response(SchoolClassSerializer(classes_for(self.tenant), many=True).data)


class TemplateListApi(TenantAPIView):
    @extend_schema(parameters=[TENANT_PARAMETER], responses={200: TemplateSerializer(many=True)},
                   summary="The academy's AlimTalk templates: approval state and variables")
    def get(self, request):
        rows = [{"template_id": t.solapi_template_id, "name": t.name, "content": t.content, "status": t.status,
                 "approved": t.status == TemplateStatus.APPROVED, "variables": variables_of(t.content)}
                for t in templates_for(self.tenant)]
        return Response(TemplateSerializer(rows, many=True).data)
