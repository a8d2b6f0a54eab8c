"""Staff retry of messages that failed for a reason that may have passed.

A retry is a new send request with new message rows, so it goes through the same
idempotent machinery as any send: one dispatch, a hold keyed by the new message id,
a new Solapi group. The failed originals stay as they are, for the record.
"""

from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from messaging.failures import FailureClass
from messaging.models import Message, MessageStatus, SendRequest
from messaging.pipeline import outbox
from messaging.pipeline.queues import BULK_QUEUE, INTERACTIVE_QUEUE

# Failures that say nothing about the recipient or the text: sending again may work.
RETRYABLE = frozenset({
    FailureClass.TRANSIENT, FailureClass.TRANSIENT_EXHAUSTED, FailureClass.AUTH_FAILED, FailureClass.CLOCK_SKEW,
    FailureClass.PLATFORM_BALANCE, FailureClass.PLATFORM, FailureClass.INTERNAL, FailureClass.REPORT_TIMEOUT,
})


def retry_failed_messages(message_ids: Iterable[int], *, user=None) -> list[SendRequest]:
    """Retry the retryable failures among these messages, once: a message that was retried,
    or is itself a retry, is not retried again (a temporary failure gets one more chance, as
    Solapi's unknown carrier codes deserve). Returns the new send requests (one per original)."""
    eligible = Message.objects.filter(
        id__in=list(message_ids), status=MessageStatus.FAILED, failure_class__in=RETRYABLE, retry__isnull=True,
        retry_of__isnull=True,
    ).select_related("send_request")
    by_request: dict[SendRequest, list[Message]] = defaultdict(list)
    for message in eligible:
        by_request[message.send_request].append(message)
    created = []
    for original, messages in by_request.items():
        with transaction.atomic():
            retry = SendRequest.objects.create(
                tenant_id=original.tenant_id, created_by=user, mode=original.mode, send_to=original.send_to,
                purpose=original.purpose, body=original.body, subject=original.subject, template=original.template,
                alimtalk_replacements=original.alimtalk_replacements, fingerprint=original.fingerprint,
                queue=INTERACTIVE_QUEUE if len(messages) <= settings.MESSAGING_INTERACTIVE_MAX_RECIPIENTS
                else BULK_QUEUE,
                estimated_cost=sum(m.price for m in messages),
            )
            Message.objects.bulk_create([
                Message(tenant_id=m.tenant_id, send_request=retry, student_id=m.student_id, retry_of=m,
                        recipient_kind=m.recipient_kind, phone=m.phone, message_type=m.message_type,
                        fallback_type=m.fallback_type, text=m.text, subject=m.subject, variables=m.variables,
                        price=m.price)
                for m in messages
            ])
        outbox.publish_dispatch(retry)
        created.append(retry)
    return created
