"""A send request's message counts by status, recomputed from the messages themselves."""

from collections.abc import Iterable

from django.db.models import Count

from messaging.models import FINAL_STATUSES, Message, MessageStatus, SendRequest
from project import clock


def count_messages(send_request_id: int) -> dict[str, int]:
    return count_messages_of([send_request_id])[send_request_id]


def count_messages_of(send_request_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """The counts of each request, from one GROUP BY over all of them."""
    ids = set(send_request_ids)
    by_request: dict[int, dict[str, int]] = {i: {status: 0 for status in MessageStatus.values} for i in ids}
    rows = (Message.objects.filter(send_request_id__in=ids).order_by()
            .values("send_request_id", "status").annotate(n=Count("id")))
    for row in rows:
        by_request[row["send_request_id"]][row["status"]] = row["n"]
    for counts in by_request.values():
        counts["total"] = sum(counts[s] for s in MessageStatus.values)
    return by_request


def refresh_counts(send_request_id: int) -> dict[str, int]:
    return refresh_counts_of([send_request_id])[send_request_id]


def refresh_counts_of(send_request_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Store the counts (recounted, so repeating it is harmless) and note when every
    message has reached a final status. Three statements however many requests: a
    delivery-report POST spans many when small sends share Solapi groups."""
    by_request = count_messages_of(send_request_ids)
    if not by_request:
        return by_request
    requests = [SendRequest(id=i, counts=counts) for i, counts in by_request.items()]
    SendRequest.objects.bulk_update(requests, ["counts"])
    done = [i for i, counts in by_request.items()
            if all(counts[s] == 0 for s in MessageStatus.values if s not in FINAL_STATUSES)]
    if done:
        SendRequest.objects.filter(id__in=done, completed__isnull=True).update(completed=clock.now())
    return by_request
