"""The beat-driven sweep for accepted messages whose final outcome is overdue.

- Poll Solapi for groups whose reports are late (a webhook can be lost).
- Past the longest carrier timeout, fail what is still unreported, and refund it.
- Settle credit for any final message whose hold is still open (a process died
  between a status change and its credit move).
- Check our books against Solapi's for groups that have settled (messaging/reports/books.py).
"""

import logging
from datetime import timedelta

from django.conf import settings

from billing import ledger
from messaging.failures import FailureClass
from messaging.models import Chunk, ChunkStatus, Message, MessageStatus
from messaging.pipeline import settlement
from messaging.reports import books
from messaging.reports.apply import apply_reports
from messaging.solapi.client import get_client
from messaging.solapi.errors import SolapiError
from messaging.solapi.reports import polled_report
from project import clock

logger = logging.getLogger(__name__)

GROUPS_PER_RUN = 50


def reconcile() -> dict[str, int]:
    return {"polled": poll_overdue_groups(), "expired": expire_unreported(), "settled": settle_open_holds(),
            "books_checked": books.check_settled_groups()}


def poll_overdue_groups() -> int:
    cutoff = clock.now() - timedelta(seconds=settings.MESSAGING_REPORT_POLL_AFTER_SECONDS)
    # A group shared by several small requests is polled once.
    group_ids = (Chunk.objects.filter(messages__status=MessageStatus.ACCEPTED, messages__accepted_at__lte=cutoff)
                 .exclude(solapi_group_id="").values_list("solapi_group_id", flat=True).distinct()
                 .order_by("solapi_group_id")[:GROUPS_PER_RUN])
    applied = 0
    for group_id in group_ids:
        try:
            results = get_client().get_group_messages(group_id)
        except SolapiError as error:
            logger.warning("report_poll_failed group=%s error=%s", group_id, error.detail)
            continue
        reports = [polled_report(r, group_id) for r in results if not r.outcome.in_progress]
        applied += apply_reports(reports).applied
    return applied


def expire_unreported() -> int:
    cutoff = clock.now() - timedelta(seconds=settings.MESSAGING_REPORT_TIMEOUT_SECONDS)
    overdue = Message.objects.filter(status=MessageStatus.ACCEPTED, accepted_at__lte=cutoff)
    ids = list(overdue.values_list("id", flat=True)[:5000])
    if not ids:
        return 0
    Message.objects.filter(id__in=ids, status=MessageStatus.ACCEPTED).update(
        status=MessageStatus.FAILED, failure_class=FailureClass.REPORT_TIMEOUT,
        failure_reason="결과 미수신: 기한 내 전달 결과가 오지 않았습니다 (no delivery report in time)",
        completed_at=clock.now(),
    )
    settlement.settle(list(Message.objects.filter(id__in=ids).only(*settlement.SETTLED_FIELDS)))
    logger.warning("messages_expired count=%s", len(ids))
    return len(ids)


def settle_open_holds() -> int:
    """Final messages whose credit never moved; accepted AlimTalk-with-fallback messages
    keep their hold on purpose until their report."""
    open_ids = ledger.messages_with_open_holds()
    stuck = Message.objects.filter(id__in=open_ids, status__in=[MessageStatus.DELIVERED, MessageStatus.FAILED]).exclude(
        settlement.AWAITS_DELIVERED_TYPE)
    stuck_accepted = Message.objects.filter(id__in=open_ids, status=MessageStatus.ACCEPTED, fallback_type="",
                                            chunk__status=ChunkStatus.FINALIZED)
    messages = list(stuck[:5000]) + list(stuck_accepted[:5000])
    settlement.settle(messages)
    return len(messages)
