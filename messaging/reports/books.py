"""Our books against Solapi's, group by group, once a group has settled.

Our books say what the academies were charged for the group's messages: each delivered
message at the price of what was delivered (an AlimTalk that fell back is an SMS or LMS),
failures refunded. Solapi says what it billed: the group's `balance` and `point`, each
requested + replacement − refund. Academies pay Solapi's prices, so the two agree. They are
recorded as a GroupReconciliation; a difference is logged as an ERROR (`group_books_differ`)
and billing_audit reports it until an operator explains it.

Before comparing, delivered AlimTalks whose report did not say whether they fell back get
their type: from the group's listing if it says, else from the group's fallback count.
"""

import logging
from dataclasses import asdict
from decimal import Decimal

from django.db import IntegrityError

from billing import ledger
from billing.models import ZERO, HoldStatus
from messaging.models import (
    BooksStatus,
    Chunk,
    ChunkStatus,
    GroupReconciliation,
    Message,
    MessageStatus,
)
from messaging.pipeline import settlement
from messaging.reports.fallback import attribute_by_group_count, delivered_type
from messaging.solapi.client import GroupStatus, get_client
from messaging.solapi.errors import SolapiError

logger = logging.getLogger(__name__)

# One get_group call each; a group Solapi has not finished yet is looked at again next run.
GROUPS_PER_RUN = 200
# Solapi's group statuses after which nothing it bills for the group changes.
SETTLED_GROUP_STATUSES = frozenset({"COMPLETE", "FAILED"})
_IN_FLIGHT = [MessageStatus.PENDING, MessageStatus.HELD, MessageStatus.SENDING, MessageStatus.ACCEPTED]
_CENT = Decimal("0.01")


def check_settled_groups() -> int:
    """Compare the books of groups that have settled here and at Solapi; returns how many."""
    chunks = (Chunk.objects.filter(status=ChunkStatus.FINALIZED, sent__isnull=False, reconciliation__isnull=True)
              .exclude(solapi_group_id="").exclude(messages__status__in=_IN_FLIGHT)
              .order_by("id")[:GROUPS_PER_RUN])
    checked = 0
    for chunk in chunks:
        try:
            group = get_client().get_group(chunk.solapi_group_id)
            if group.status not in SETTLED_GROUP_STATUSES:
                continue
            _settle_fallbacks(chunk, group)
        except SolapiError as error:
            logger.warning("books_check_failed group=%s error=%s", chunk.solapi_group_id, error.detail)
            continue
        if _has_open_holds(chunk):
            continue  # settle_open_holds moves them first; compared on a later run
        checked += _record(chunk, group)
    return checked


def unreconciled_groups() -> list[str]:
    """billing_audit's view: every group whose books differ from Solapi's and is not explained."""
    return [
        f"group {r.solapi_group_id} (chunk {r.chunk_id}): Solapi billed {r.billed}, our books say "
        f"{r.expected} (difference {r.difference:+})"
        for r in GroupReconciliation.objects.filter(status=BooksStatus.DIFFERS).order_by("id")
    ]


def _settle_fallbacks(chunk: Chunk, group: GroupStatus) -> None:
    unknown = list(Message.objects.filter(chunk=chunk, status=MessageStatus.DELIVERED, delivered_type="")
                   .exclude(fallback_type=""))
    if not unknown:
        return
    listed = {r.message_id: r for r in get_client().get_group_messages(chunk.solapi_group_id)}
    for message in unknown:
        if result := listed.get(message.id):
            message.delivered_type = delivered_type(message, result.message_type, result.replacement, True)
    still_unknown = [m for m in unknown if not m.delivered_type]
    known_fallbacks = sum(1 for m in _delivered_with_fallback(chunk, unknown) if m.delivered_type not in ("", "ATA"))
    if not attribute_by_group_count(still_unknown, sent_replacement=group.sent_replacement,
                                    known_fallbacks=known_fallbacks):
        logger.error("fallback_unattributed group=%s unknown=%s solapi_fallbacks=%s known_fallbacks=%s",
                     chunk.solapi_group_id, len(still_unknown), group.sent_replacement, known_fallbacks)
    for message_type in {m.delivered_type for m in unknown}:
        ids = [m.id for m in unknown if m.delivered_type == message_type]
        Message.objects.filter(id__in=ids, delivered_type="").update(delivered_type=message_type)
    settlement.settle(unknown)


def _delivered_with_fallback(chunk: Chunk, updated: list[Message]) -> list[Message]:
    """The group's delivered AlimTalks with fallback, with `updated` in place of their stored rows."""
    replaced = {m.id: m for m in updated}
    stored = Message.objects.filter(chunk=chunk, status=MessageStatus.DELIVERED).exclude(fallback_type="")
    return [replaced.get(m.id, m) for m in stored]


def _has_open_holds(chunk: Chunk) -> bool:
    return Message.objects.filter(chunk=chunk, id__in=ledger.messages_with_open_holds()).exists()


def _record(chunk: Chunk, group: GroupStatus) -> int:
    delivered = list(Message.objects.filter(chunk=chunk, status=MessageStatus.DELIVERED)
                     .values_list("delivered_type", "fallback_type"))
    fallbacks = sum(1 for shown, fallback in delivered if fallback and shown and shown != "ATA")
    holds = ledger.holds_for(Message.objects.filter(chunk=chunk).values_list("id", flat=True))
    charged = sum((h.captured_amount for h in holds.values() if h.status == HoldStatus.CAPTURED and not h.refunded),
                  ZERO)
    expected = Decimal(charged).quantize(_CENT)
    billed = group.billed.quantize(_CENT)
    difference = billed - expected
    try:
        GroupReconciliation.objects.create(
            chunk=chunk, solapi_group_id=chunk.solapi_group_id, expected=expected, billed=billed,
            difference=difference, delivered=len(delivered),
            fallbacks=fallbacks, solapi_fallbacks=group.sent_replacement,
            solapi_billing={"balance": asdict(group.balance), "point": asdict(group.point)},
            status=BooksStatus.MATCHED if difference == 0 else BooksStatus.DIFFERS,
        )
    except IntegrityError:
        return 0  # another sweep recorded it meanwhile
    if difference:
        logger.error("group_books_differ group=%s chunk=%s expected=%s billed=%s difference=%s "
                     "fallbacks=%s solapi_fallbacks=%s", chunk.solapi_group_id, chunk.id, expected, billed,
                     difference, fallbacks, group.sent_replacement)
    return 1
