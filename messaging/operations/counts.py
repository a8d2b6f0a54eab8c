"""A send request's message counts by status, recomputed from the messages themselves."""

from collections import Counter
from collections.abc import Iterable

from django.db.models import Count

from messaging.models import FINAL_STATUSES, Message, MessageStatus, SendRequest, shown_message_status
from project import clock
from project.sql import update_rows


def count_messages(send_request_id: int) -> dict[str, int]:
    return count_messages_of([send_request_id])[send_request_id]


def count_messages_of(send_request_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """The counts of each request, from one GROUP BY over all of them. A pending message is
    counted as held or sending while its chunk is at that step (messaging/models.py)."""
    ids = set(send_request_ids)
    by_request: dict[int, Counter] = {i: Counter() for i in ids}
    rows = (Message.objects.filter(send_request_id__in=ids).order_by()
            .values("send_request_id", shown=shown_message_status()).annotate(n=Count("id")))
    for row in rows:
        by_request[row["send_request_id"]][row["shown"]] = row["n"]
    return {i: _with_total(counts) for i, counts in by_request.items()}


def counts_of_statuses(shown_statuses: Iterable[str]) -> dict[str, int]:
    """The counts of messages whose shown statuses are these (all of a request's, read already)."""
    return _with_total(Counter(shown_statuses))


def _with_total(by_status: Counter) -> dict[str, int]:
    counts = {status: by_status[status] for status in MessageStatus.values}
    counts["total"] = sum(counts.values())
    return counts


def refresh_counts(send_request_id: int) -> dict[str, int]:
    return refresh_counts_of([send_request_id])[send_request_id]


def refresh_counts_of(send_request_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Store the counts (recounted, so repeating it is harmless) and note when every
    message has reached a final status. A fixed number of statements however many requests
    (one GROUP BY, one UPDATE of the counts, one of the completed): a delivery-report POST
    spans many requests when small sends share Solapi groups."""
    by_request = count_messages_of(send_request_ids)
    if not by_request:
        return by_request
    if len(by_request) == 1:
        # One plain UPDATE: bulk_update would add a BEGIN and a COMMIT around its one statement.
        [(request_id, counts)] = by_request.items()
        SendRequest.objects.filter(id=request_id).update(counts=counts)
    else:
        # One UPDATE … FROM unnest on PostgreSQL: bulk_update's CASE WHEN over a small group's
        # hundred requests was a tenth of the worker's time under the everyday load.
        update_rows([SendRequest(id=i, counts=c) for i, c in by_request.items()], ["counts"])
    done = [i for i, counts in by_request.items()
            if all(counts[s] == 0 for s in MessageStatus.values if s not in FINAL_STATUSES)]
    if done:
        SendRequest.objects.filter(id__in=done, completed__isnull=True).update(completed=clock.now())
    return by_request
