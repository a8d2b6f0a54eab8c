"""A send request's message counts by status, recomputed from the messages themselves."""

from django.db.models import Count

from messaging.models import FINAL_STATUSES, Message, MessageStatus, SendRequest
from project import clock


def count_messages(send_request_id: int) -> dict[str, int]:
    rows = Message.objects.filter(send_request_id=send_request_id).values("status").annotate(n=Count("id"))
    counts = {status: 0 for status in MessageStatus.values} | {row["status"]: row["n"] for row in rows}
    counts["total"] = sum(counts[s] for s in MessageStatus.values)
    return counts


def refresh_counts(send_request_id: int) -> dict[str, int]:
    """Store the counts (recounted, so repeating it is harmless) and note when every
    message has reached a final status."""
    counts = count_messages(send_request_id)
    SendRequest.objects.filter(id=send_request_id).update(counts=counts)
    if all(counts[s] == 0 for s in MessageStatus.values if s not in FINAL_STATUSES):
        SendRequest.objects.filter(id=send_request_id, completed__isnull=True).update(completed=clock.now())
    return counts
