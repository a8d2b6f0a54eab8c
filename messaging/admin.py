"""The operations console: what was sent, what failed and why, what is paused.

Operators are not the academy, so phone numbers are masked everywhere here.
"""

from datetime import UTC, datetime

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join

from messaging.compose.resend import RETRYABLE, retry_failed_messages
from messaging.models import (
    AlertState,
    BooksStatus,
    BreakerState,
    Chunk,
    CircuitBreaker,
    DeliveryAttempt,
    DeliveryReport,
    GroupReconciliation,
    Message,
    MessageOutcome,
    MessageStatus,
    ReceivedReportBatch,
    RequestRate,
    SendRequest,
    SuppressedRecipient,
    WorkerHeartbeat,
)
from messaging.operations import pauses
from messaging.operations.counts import count_messages
from messaging.operations.progress import progress
from messaging.operations.timeline import message_timeline
from messaging.pipeline import breaker
from project import clock
from tenants.admin import (
    MaskedPhonesAdmin,
    ReadOnlyAdmin,
    action_form_page,
    custom_permission,
    masked_phone_column,
    record_action,
)

# How often a running send request's page reloads itself.
PROGRESS_RELOAD_SECONDS = 5


def _retry_failed(model_admin: admin.ModelAdmin, request, message_ids: QuerySet) -> None:
    """Retry the retryable failures among these messages (messaging/compose/resend.py) and say
    what happened; one each from the message list and from a send request's page."""
    # Each retry's send request names the user too (created_by).
    message_ids = list(message_ids)
    retries = retry_failed_messages(message_ids, user=request.user)
    retried = sum(r.messages.count() for r in retries)
    record_action(request, Message.objects.filter(retry__send_request__in=retries),
                  "retried (new send request by this user)")
    skipped = len(message_ids) - retried
    skipped_now = Message.objects.filter(send_request__in=retries, status=MessageStatus.SKIPPED).count()
    model_admin.message_user(
        request,
        f"Retrying {retried} message(s) in {len(retries)} new send request(s); {skipped_now} of them skipped "
        f"now (opted out or consent withdrawn since). "
        f"{skipped} not retried: not failed, already retried, or failed for a lasting reason "
        f"(retryable: {', '.join(sorted(RETRYABLE))}).",
        messages.SUCCESS if retried else messages.WARNING,
    )


def _count_column(status: str):
    """A changelist column showing the send request's stored count for one status."""
    label = "전체 (total)" if status == "total" else MessageStatus(status).label

    @admin.display(description=label)
    def column(self, send_request: SendRequest) -> int:
        return send_request.counts.get(status, 0)

    return column


class ChunkInline(admin.TabularInline):
    model = Chunk
    extra = 0
    fields = ["index", "status", "solapi_group_id", "transient_failures", "rate_limited", "paused_since",
              "pause_class", "last_error", "updated"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SendRequest)
class SendRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "tenant", "mode", "purpose", "total", "accepted", "delivered", "failed", "skipped",
                    "dispatched", "send_at", "cancelled", "completed", "created"]
    list_filter = ["mode", "purpose", "tenant", ("dispatched", admin.EmptyFieldListFilter),
                   ("cancelled", admin.EmptyFieldListFilter), ("send_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["tenant", "created_by", "mode", "send_to", "purpose", "body", "subject", "template",
                       "estimated_cost", "queue", "dispatched", "dispatch_attempts", "dispatch_error", "counts",
                       "send_at", "cancelled", "cancelled_by", "completed", "created",
                       "broadcast_progress"]
    exclude = ["alimtalk_replacements", "idempotency_key", "fingerprint", "response"]
    inlines = [ChunkInline]
    actions = ["retry_failed_of_request"]
    object_actions = ["retry_failed_of_request"]
    has_retry_messages_permission = custom_permission("messaging.retry_messages")

    @admin.action(description="재시도: 일시적 실패 메시지 (retry this request's transient and platform failures)",
                  permissions=["retry_messages"])
    def retry_failed_of_request(self, request, queryset: QuerySet[SendRequest]):
        _retry_failed(self, request, Message.objects.filter(send_request__in=queryset).values_list("id", flat=True))

    @admin.display(description="진행 (progress)")
    def broadcast_progress(self, send_request: SendRequest) -> str:
        """The status API's progress; the page reloads itself while the request is running."""
        counts = count_messages(send_request.id)
        state = progress(send_request, counts)
        by_status = ", ".join(f"{status} {counts[status]}" for status in MessageStatus.values if counts[status])
        reload = format_html('<script>setTimeout(function () {{ location.reload(); }}, {});</script>'
                             '<br><small>실행 중: {}초마다 새로고침 (reloads every {} s while running)</small>',
                             PROGRESS_RELOAD_SECONDS * 1000, PROGRESS_RELOAD_SECONDS, PROGRESS_RELOAD_SECONDS)
        return format_html(
            "{}<br>최종 {}% · 발송 {}% · {} msg/s · 예상 완료 (estimated finish) {}{}",
            by_status or "-", state.percent_final, state.percent_sent, state.throughput_per_second,
            clock.shown(state.estimated_finish), reload if state.running else "",
        )

    total = _count_column("total")
    accepted = _count_column("accepted")
    delivered = _count_column("delivered")
    failed = _count_column("failed")
    skipped = _count_column("skipped")


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "tenant", "send_request", "recipient", "message_type", "price", "shown_status",
                    "failure_class", "skip_reason", "updated"]
    list_filter = ["status", "failure_class", "skip_reason", "message_type", "tenant"]
    search_fields = ["=id", "=send_request__id", "solapi_message_id"]
    list_select_related = ["tenant", "send_request", "chunk"]
    fields = ["tenant", "send_request", "chunk", "recipient", "recipient_kind", "message_type", "fallback_type",
              "delivered_type", "price", "shown_status", "skip_reason", "failure_class", "failure_reason",
              "solapi_status_code", "solapi_message_id", "retry_of", "not_before", "text", "timeline"]
    readonly_fields = fields
    actions = ["retry_failed_transient"]
    object_actions = ["retry_failed_transient"]

    recipient = masked_phone_column("phone", "수신번호")

    @admin.display(description="상태 (status)", ordering="status")
    def shown_status(self, message: Message) -> str:
        """Paused, with the reason, while a platform pause holds the message back."""
        pause = pauses.pause_of(message.chunk)
        status = pauses.shown_status(message.shown_status, pause)
        if status == pauses.PAUSED:
            return f"{pauses.PAUSED}: {pause['reason']} (since {clock.shown(pause['since'])})"
        return status

    @admin.display(description="타임라인 (timeline)")
    def timeline(self, message: Message) -> str:
        # In KST and labelled, like every other time on the page (project/formats/ko/formats.py).
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((clock.shown(e.at), e.what, e.detail) for e in message_timeline(message)),
        )
        return format_html("<table><tr><th>시각 (KST)</th><th>what</th><th>detail</th></tr>{}</table>", rows)

    has_retry_messages_permission = custom_permission("messaging.retry_messages")

    @admin.action(description="Retry failed messages whose failure may have passed (transient, platform)",
                  permissions=["retry_messages"])
    def retry_failed_transient(self, request, queryset: QuerySet[Message]):
        _retry_failed(self, request, queryset.values_list("id", flat=True))


@admin.register(Chunk)
class ChunkAdmin(ReadOnlyAdmin):
    list_display = ["id", "send_request", "index", "status", "solapi_group_id", "transient_failures", "rate_limited",
                    "paused_since", "pause_class", "updated"]
    list_filter = ["status", "pause_class"]
    search_fields = ["solapi_group_id", "=send_request__id"]


AMBIGUOUS_WARNING = "불확실: Solapi에 도달했을 수 있음 (ambiguous: may have reached Solapi)"


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdmin):
    list_display = ["id", "chunk", "operation", "http_status", "error_code", "failure_class", "ambiguous_warning",
                    "duration_ms", "created"]
    list_filter = ["operation", "failure_class", "ambiguous", "http_status"]
    search_fields = ["solapi_group_id", "task_id"]
    readonly_fields = ["ambiguous_warning"]

    @admin.display(description="불확실 (ambiguous)", ordering="ambiguous")
    def ambiguous_warning(self, attempt: DeliveryAttempt) -> str:
        """A warning, never a green check: an ambiguous call is the bad case (the chunk's
        fate is only known once Solapi is asked again)."""
        if not attempt.ambiguous:
            return "-"
        return format_html('<img src="{}" alt="warning"> <strong class="ambiguous-warning">{}</strong>',
                           static("admin/img/icon-alert.svg"), AMBIGUOUS_WARNING)


@admin.register(MessageOutcome)
class MessageOutcomeAdmin(ReadOnlyAdmin):
    list_display = ["id", "tenant", "recipient_summary", "event", "success", "amount", "failure_class",
                    "failure_reason", "created"]
    list_filter = ["event", "success", "failure_class", "tenant"]


@admin.register(DeliveryReport)
class DeliveryReportAdmin(ReadOnlyAdmin):
    list_display = ["event_data_id", "message", "status_code", "message_type", "received"]
    list_filter = ["status_code"]
    search_fields = ["event_data_id", "solapi_message_id"]
    exclude = ["payload"]  # it carries the full phone number


@admin.register(ReceivedReportBatch)
class ReceivedReportBatchAdmin(ReadOnlyAdmin):
    """Webhook POSTs as stored before the answer (messaging/reports/inbox.py): whether each is
    applied, what became of its reports, and why a waiting one failed."""

    list_display = ["id", "reports", "received", "applied", "summary", "failed_attempts"]
    list_filter = [("applied", admin.EmptyFieldListFilter)]
    exclude = ["body"]  # it carries the full phone numbers


class ExplainForm(forms.Form):
    explanation = forms.CharField(max_length=300, help_text="Why Solapi's bill differs (e.g. a credit note, a "
                                  "tariff change): kept on the record.")


@admin.register(GroupReconciliation)
class GroupReconciliationAdmin(ReadOnlyAdmin):
    """Our books against Solapi's bill, one row per settled group. A difference stays in
    billing_audit until an operator explains it here."""

    list_display = ["solapi_group_id", "chunk", "status", "expected", "billed", "difference", "delivered",
                    "fallbacks", "solapi_fallbacks", "checked"]
    list_filter = ["status"]
    search_fields = ["solapi_group_id", "=chunk__send_request__id"]
    actions = ["explain_difference"]
    object_actions = ["explain_difference"]
    has_explain_books_difference_permission = custom_permission("messaging.explain_books_difference")

    @admin.action(description="Explain the difference (removes it from billing_audit)",
                  permissions=["explain_books_difference"])
    def explain_difference(self, request, queryset):
        form = ExplainForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            differing = list(queryset.filter(status=BooksStatus.DIFFERS))
            explained = queryset.filter(id__in=[r.id for r in differing]).update(
                status=BooksStatus.EXPLAINED,
                explanation=f"{form.cleaned_data['explanation']} ({request.user})"[:300])
            record_action(request, differing, f"explained the difference: {form.cleaned_data['explanation']}")
            self.message_user(request, f"{explained} difference(s) marked explained.")
            return None
        return action_form_page(
            request, self, queryset, form, action="explain_difference", title="Explain a difference",
            intro="Explain why Solapi billed these groups differently from our books:", submit="Explain",
            describe=lambda r: f"{r.solapi_group_id}: expected {r.expected}, billed {r.billed} ({r.difference:+})")


@admin.register(SuppressedRecipient)
class SuppressedRecipientAdmin(MaskedPhonesAdmin):
    list_display = ["masked_phone", "tenant", "reason", "source", "created"]
    list_filter = ["reason", "tenant"]
    search_fields = ["tenant__slug"]
    phone_fields = {"phone": "masked_phone"}
    masked_phone = masked_phone_column("phone")


@admin.register(CircuitBreaker)
class CircuitBreakerAdmin(ReadOnlyAdmin):
    list_display = ["name", "state", "failure_class", "error_code", "detail", "opened_at", "next_probe_at",
                    "closed_at"]
    actions = ["close_breaker"]
    object_actions = ["close_breaker"]

    has_close_breaker_permission = custom_permission("messaging.close_breaker")

    @admin.action(description="Close: resume sending now (the cause was fixed)", permissions=["close_breaker"])
    def close_breaker(self, request, queryset):
        if queryset.filter(state=BreakerState.OPEN).exists() and breaker.close(f"closed by {request.user} in admin"):
            record_action(request, queryset, "closed the breaker: sending resumed")
            self.message_user(request, "Breaker closed: paused chunks go out at their next attempt.")
        else:
            self.message_user(request, "The breaker was not open.", messages.WARNING)


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdmin):
    """What check_alerts last saw (messaging/operations/alerts.py, docs/alerts.md)."""

    list_display = ["name", "active", "since", "raised_at", "resolved_at", "checked_at", "detail"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["hostname", "queues", "concurrency", "pid", "started", "last_seen", "stopped"]


@admin.register(RequestRate)
class RequestRateAdmin(ReadOnlyAdmin):
    list_display = ["name", "next_call_at"]

    @admin.display(description="다음 호출 가능 시각 (next call at)")
    def next_call_at(self, rate: RequestRate) -> str:
        return clock.shown(datetime.fromtimestamp(rate.next_slot, UTC))
