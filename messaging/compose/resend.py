"""Staff retry of messages that failed for a reason that may have passed.

A retry is a new send request with new message rows, so it goes through the same
idempotent machinery as any send: one dispatch, a hold keyed by the new message id,
a new Solapi group. The failed originals stay as they are, for the record.
"""

from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.db.models import QuerySet

from messaging.compose import rules
from messaging.compose.planning import PlannedMessage
from messaging.compose.recipient_checks import Recipient, standing_of
from messaging.compose.send_requests import create_send_request
from messaging.failures import FailureClass
from messaging.models import Message, MessageStatus, SendRequest
from messaging.operations.counts import refresh_counts
from messaging.pipeline import outbox
from project import clock

# Failures that say nothing about the recipient or the text: sending again may work.
RETRYABLE = frozenset({
    FailureClass.TRANSIENT, FailureClass.TRANSIENT_EXHAUSTED, FailureClass.AUTH_FAILED, FailureClass.CLOCK_SKEW,
    FailureClass.PLATFORM_BALANCE, FailureClass.PLATFORM, FailureClass.INTERNAL, FailureClass.REPORT_TIMEOUT,
})


def retry_failed_messages(message_ids: Iterable[int], *, user=None) -> list[SendRequest]:
    """Retry the retryable failures among these messages, once: a message that was retried,
    or is itself a retry, is not retried again (a temporary failure gets one more chance, as
    Solapi's unknown carrier codes deserve). Returns the new send requests (one per original)."""
    eligible = _retryable(Message.objects.filter(id__in=list(message_ids))).select_related("send_request")
    by_request: dict[SendRequest, list[Message]] = defaultdict(list)
    for message in eligible:
        by_request[message.send_request].append(message)
    created = []
    for original, messages in by_request.items():
        with transaction.atomic():
            retry = create_send_request(
                tenant_id=original.tenant_id, user=user, messages=_planned_again(original, messages),
                mode=original.mode, send_to=original.send_to, purpose=original.purpose, body=original.body,
                subject=original.subject, template=original.template,
                alimtalk_replacements=original.alimtalk_replacements, fingerprint=original.fingerprint,
            )
            refresh_counts(retry.id)
        outbox.request_dispatch(retry)
        created.append(retry)
    return created


def retryable_failures(send_request: SendRequest) -> QuerySet[Message]:
    """The request's failed messages that a retry would send again (the staff console's button)."""
    return _retryable(send_request.messages.all())


def retry_failures_of(send_request: SendRequest, *, user=None) -> SendRequest | None:
    """Retry one send request's retryable failures, once: the new request, or None if none qualified."""
    retries = retry_failed_messages(retryable_failures(send_request).values_list("id", flat=True), user=user)
    return retries[0] if retries else None


def _retryable(messages: QuerySet[Message]) -> QuerySet[Message]:
    return messages.filter(status=MessageStatus.FAILED, failure_class__in=RETRYABLE, retry__isnull=True,
                           retry_of__isnull=True)


def _planned_again(original: SendRequest, messages: list[Message]) -> list[PlannedMessage]:
    """The failed messages, to be written again as they were planned (text, type, price), each
    checked again as a new send would be: a recipient who opted out or withdrew consent since
    is skipped with the reason, and an ad at night waits for 08:00 (the reserve step checks
    all of it once more when the retry is sent)."""
    standing = standing_of(tenant_id=original.tenant_id, purpose=original.purpose,
                           phones=[m.phone for m in messages], student_ids=[m.student_id for m in messages])
    now = clock.kst_now()
    planned, waiting = [], 0
    for message in messages:
        again = PlannedMessage(
            student_id=message.student_id, recipient_kind=message.recipient_kind, phone=message.phone,
            text=message.text, subject=message.subject, variables=message.variables,
            message_type=message.message_type, fallback_type=message.fallback_type, price=message.price,
            retry_of_id=message.id,
        )
        recipient = Recipient(student_id=message.student_id, kind=message.recipient_kind, phone=message.phone)
        again.skip_reason = standing.skip_reason(recipient)
        if not again.skip_reason and standing.must_wait(recipient, now):
            again.not_before = rules.release_time(rules.next_morning(now), waiting)
            waiting += 1
        planned.append(again)
    return planned
