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

from django.db import IntegrityError, transaction
from django.db.models import Min

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
    """Compare the books of groups that have settled here and at Solapi; returns how many.
    A group shared by several small requests (messaging/pipeline/express.py) is compared
    once, over all its chunks."""
    group_ids = (Chunk.objects.filter(status=ChunkStatus.FINALIZED, sent__isnull=False, reconciliation__isnull=True)
                 .exclude(solapi_group_id="").exclude(messages__status__in=_IN_FLIGHT)
                 .values("solapi_group_id").annotate(first=Min("id")).order_by("first")
                 .values_list("solapi_group_id", flat=True)[:GROUPS_PER_RUN])
    checked = 0
    for group_id in group_ids:
        if _unsettled_here(group_id):
            continue
        try:
            group = get_client().get_group(group_id)
            if group.status not in SETTLED_GROUP_STATUSES:
                continue
            _settle_fallbacks(group_id, group)
        except SolapiError as error:
            logger.warning("books_check_failed group=%s error=%s", group_id, error.detail)
            continue
        if _has_open_holds(group_id):
            continue  # settle_open_holds moves them first; compared on a later run
        checked += _record(group_id, group)
    return checked


def unreconciled_groups() -> list[str]:
    """billing_audit's view: every group whose books differ from Solapi's and is not explained."""
    chunks: dict[str, list[int]] = {}
    rows = {}
    for r in GroupReconciliation.objects.filter(status=BooksStatus.DIFFERS).order_by("id"):
        chunks.setdefault(r.solapi_group_id, []).append(r.chunk_id)
        rows.setdefault(r.solapi_group_id, r)
    return [
        f"group {group_id} (chunks {', '.join(map(str, chunks[group_id]))}): Solapi billed {r.billed}, "
        f"our books say {r.expected} (difference {r.difference:+})"
        for group_id, r in rows.items()
    ]


def _group_messages(group_id: str):
    return Message.objects.filter(chunk__solapi_group_id=group_id)


def _unsettled_here(group_id: str) -> bool:
    """Whether a chunk of the group is still moving, or has a message still in flight."""
    return (Chunk.objects.filter(solapi_group_id=group_id).exclude(status=ChunkStatus.FINALIZED).exists()
            or _group_messages(group_id).filter(status__in=_IN_FLIGHT).exists())


def _settle_fallbacks(group_id: str, group: GroupStatus) -> None:
    unknown = list(_group_messages(group_id).filter(status=MessageStatus.DELIVERED, delivered_type="")
                   .exclude(fallback_type=""))
    if not unknown:
        return
    listed = {r.message_id: r for r in get_client().get_group_messages(group_id)}
    for message in unknown:
        if result := listed.get(message.id):
            message.delivered_type = delivered_type(message, result.message_type, result.replacement, True)
    still_unknown = [m for m in unknown if not m.delivered_type]
    known_fallbacks = sum(1 for m in _delivered_with_fallback(group_id, unknown) if m.delivered_type not in ("", "ATA"))
    if not attribute_by_group_count(still_unknown, sent_replacement=group.sent_replacement,
                                    known_fallbacks=known_fallbacks):
        logger.error("fallback_unattributed group=%s unknown=%s solapi_fallbacks=%s known_fallbacks=%s",
                     group_id, len(still_unknown), group.sent_replacement, known_fallbacks)
    for message_type in {m.delivered_type for m in unknown}:
        ids = [m.id for m in unknown if m.delivered_type == message_type]
        Message.objects.filter(id__in=ids, delivered_type="").update(delivered_type=message_type)
    settlement.settle(unknown)


def _delivered_with_fallback(group_id: str, updated: list[Message]) -> list[Message]:
    """The group's delivered AlimTalks with fallback, with `updated` in place of their stored rows."""
    replaced = {m.id: m for m in updated}
    stored = _group_messages(group_id).filter(status=MessageStatus.DELIVERED).exclude(fallback_type="")
    return [replaced.get(m.id, m) for m in stored]


def _has_open_holds(group_id: str) -> bool:
    return _group_messages(group_id).filter(id__in=ledger.messages_with_open_holds()).exists()


def _record(group_id: str, group: GroupStatus) -> int:
    messages = _group_messages(group_id)
    delivered = list(messages.filter(status=MessageStatus.DELIVERED).values_list("delivered_type", "fallback_type"))
    fallbacks = sum(1 for shown, fallback in delivered if fallback and shown and shown != "ATA")
    holds = ledger.holds_for(messages.values_list("id", flat=True))
    charged = sum((h.captured_amount for h in holds.values() if h.status == HoldStatus.CAPTURED and not h.refunded),
                  ZERO)
    expected = Decimal(charged).quantize(_CENT)
    billed = group.billed.quantize(_CENT)
    difference = billed - expected
    chunk_ids = list(Chunk.objects.filter(solapi_group_id=group_id).order_by("id").values_list("id", flat=True))
    try:
        with transaction.atomic():
            # One row per chunk, each with the group's totals: every chunk knows it was checked.
            GroupReconciliation.objects.bulk_create([GroupReconciliation(
                chunk_id=chunk_id, solapi_group_id=group_id, expected=expected, billed=billed,
                difference=difference, delivered=len(delivered),
                fallbacks=fallbacks, solapi_fallbacks=group.sent_replacement,
                solapi_billing={"balance": asdict(group.balance), "point": asdict(group.point)},
                status=BooksStatus.MATCHED if difference == 0 else BooksStatus.DIFFERS,
            ) for chunk_id in chunk_ids])
    except IntegrityError:
        return 0  # another sweep recorded it meanwhile
    if difference:
        logger.error("group_books_differ group=%s chunks=%s expected=%s billed=%s difference=%s "
                     "fallbacks=%s solapi_fallbacks=%s", group_id, ",".join(map(str, chunk_ids)), expected, billed,
                     difference, fallbacks, group.sent_replacement)
    return 1
