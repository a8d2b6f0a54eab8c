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

from messaging.api.serializers import (
    CancelOutcomeSerializer,
    ConsentInputSerializer,
    ConsentSerializer,
    ErrorSerializer,
    OptOutInputSerializer,
    PreviewSerializer,
    SendAcceptedSerializer,
    SendInputSerializer,
)
from messaging.api.tenancy import TENANT_HEADER, TenantAPIView
from messaging.api.validation import validated
from messaging.compose import suppression
from messaging.compose.previews import preview_send
from messaging.compose.refusals import Refusal, RefusalCode
from messaging.compose.send_requests import send_request_create
from messaging.models import SendRequest, SuppressionReason
from messaging.pipeline.cancellation import cancel_send_request
from messaging.reports.apply import apply_reports
from messaging.selectors import (
    consents_due_for_reconfirmation,
    credit_summary,
    send_request_detail,
    send_request_of,
)
from messaging.solapi.reports import InvalidReportPayload, TooManyReports, parse_webhook
from tenants.models import Student
from tenants.phones import InvalidPhone, normalize_phone
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
        status_url = reverse("send-request-detail", kwargs={"send_request_id": result["id"]})
        return Response({**result, "status_url": status_url}, status=status.HTTP_202_ACCEPTED)


class PreviewMessageApi(TenantAPIView):
    @extend_schema(request=SendInputSerializer, responses={200: PreviewSerializer, **ERRORS},
                   parameters=[TENANT_PARAMETER], summary="Preview a send: texts, types, prices; no side effects")
    def post(self, request):
        serializer = validated(SendInputSerializer, request.data)
        return Response(preview_send(tenant=self.tenant, data=serializer.to_send_input()))


class SendRequestDetailApi(TenantAPIView):
    @extend_schema(responses={200: dict, 404: ErrorSerializer}, summary="A send request's progress, message by message",
                   parameters=[TENANT_PARAMETER, OpenApiParameter("page", int), OpenApiParameter("page_size", int)])
    def get(self, request, send_request_id: int):
        send_request = send_request_of(self.tenant, send_request_id)
        page = _int_param(request, "page", 1)
        page_size = _int_param(request, "page_size", 100)
        return Response(send_request_detail(send_request, page=page, page_size=page_size))


class SendRequestCancelApi(TenantAPIView):
    @extend_schema(request=None, responses={200: CancelOutcomeSerializer, 404: ErrorSerializer},
                   parameters=[TENANT_PARAMETER], summary="Stop a send: cancel what has not gone to Solapi")
    def post(self, request, send_request_id: int):
        outcome = cancel_send_request(self.tenant, send_request_id, user=request.user)
        status_url = reverse("send-request-detail", kwargs={"send_request_id": send_request_id})
        return Response(CancelOutcomeSerializer({**asdict(outcome), "status_url": status_url}).data)


class CreditsApi(TenantAPIView):
    @extend_schema(responses={200: dict}, parameters=[TENANT_PARAMETER], summary="Credit balance, holds and ledger")
    def get(self, request):
        return Response(credit_summary(self.tenant))


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
            batch = parse_webhook(request.data)
        except InvalidReportPayload as exc:
            raise Refusal(RefusalCode.INVALID_REQUEST, errors=str(exc)) from None
        except TooManyReports as exc:
            raise Refusal(RefusalCode.TOO_MANY_ITEMS, field="reports", count=exc.count, limit=exc.limit,
                          extra={"field": "reports", "count": exc.count, "limit": exc.limit}) from None
        # 200 whatever became of each report: Solapi re-sends a batch that is not answered
        # 200, and a report that could not be used would not be any better the second time.
        return Response(asdict(apply_reports(batch.reports, rejected=batch.rejected)))


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

    @extend_schema(request=OptOutInputSerializer, responses={201: dict, **ERRORS}, parameters=[TENANT_PARAMETER],
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
        return Response({"phone": entry.phone, "reason": entry.reason, "source": entry.source},
                        status=status.HTTP_201_CREATED)
