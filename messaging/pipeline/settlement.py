"""Make a message's credit and outcome rows agree with its status. Used by finalize, by
delivery reports and by the reconciliation sweep; safe to run any number of times.

| status                           | credit                                              |
|----------------------------------|-----------------------------------------------------|
| accepted / delivered             | capture the hold                                    |
| AlimTalk with fallback, accepted | keep holding the dearer price until the report      |
| … delivered                      | capture the price of the type Solapi delivered      |
| … delivered, as what not said    | keep holding until the group's fallback count tells |
| failed before Solapi accepted it | release the hold                                    |
| failed after Solapi accepted it  | refund the capture (Solapi refunds us as well)      |
"""

from collections import defaultdict
from collections.abc import Sequence

from django.db.models import Q

from billing import ledger
from billing.pricing import price_list, price_of
from messaging.compose import suppression
from messaging.models import Message, MessageOutcome, MessageStatus, OutcomeEvent
from messaging.operations.counts import refresh_counts_of
from project import clock
from project.sql import insert_ignoring_conflicts
from tenants.models import Tenant
from tenants.phones import mask_phone

_EVENTS = {
    MessageStatus.ACCEPTED: OutcomeEvent.ACCEPTED,
    MessageStatus.DELIVERED: OutcomeEvent.DELIVERED,
    MessageStatus.FAILED: OutcomeEvent.FAILED,
}


# The fields settle() reads: callers load only these (`Message.objects.only(*SETTLED_FIELDS)`);
# a chunk's thousand messages with every column cost finalize about as much as its writes.
# A field read here and missing from this list would cost one query per message.
SETTLED_FIELDS = ("id", "tenant", "send_request", "status", "phone", "fallback_type", "delivered_type",
                  "accepted_at", "failure_class", "failure_reason", "solapi_status_code")


def settle(messages: Sequence[Message]) -> None:
    """Move credit, learn suppressions, write one MessageOutcome row per outcome, recount.
    The messages need SETTLED_FIELDS only."""
    messages = [m for m in messages if m.status in _EVENTS]
    if not messages:
        return
    ready = [m for m in messages if not awaits_delivered_type(m)]
    _move_credit(ready)
    suppression.learn_from(ready)
    _write_outcomes(ready)
    refresh_counts_of({m.send_request_id for m in messages})


def awaits_delivered_type(message: Message) -> bool:
    """An AlimTalk with fallback, delivered, without a word on whether it fell back: its
    credit moves once the group's fallback count tells (messaging/reports/books.py)."""
    return bool(message.fallback_type) and message.status == MessageStatus.DELIVERED and not message.delivered_type


# The same, as a query.
AWAITS_DELIVERED_TYPE = Q(status=MessageStatus.DELIVERED, delivered_type="") & ~Q(fallback_type="")


def _move_credit(messages: Sequence[Message]) -> None:
    awaiting_report = {m.id for m in messages if m.fallback_type and m.status == MessageStatus.ACCEPTED}
    charged = [m for m in messages if m.status != MessageStatus.FAILED and m.id not in awaiting_report]
    ledger.capture_holds(message_ids=[m.id for m in charged], amounts=_billed_amounts(charged))
    failed = [m.id for m in messages if m.status == MessageStatus.FAILED]
    ledger.release_holds(message_ids=failed)
    ledger.refund_captured(message_ids=[m.id for m in messages if m.status == MessageStatus.FAILED and m.accepted_at],
                           memo="failed after acceptance")


def _billed_amounts(messages: Sequence[Message]) -> dict[int, object]:
    """For AlimTalk with fallback: the price of what Solapi actually delivered."""
    delivered_with_fallback = [m for m in messages if m.fallback_type and m.delivered_type]
    by_tenant = defaultdict(list)
    for message in delivered_with_fallback:
        by_tenant[message.tenant_id].append(message)
    amounts = {}
    for tenant_id, tenant_messages in by_tenant.items():
        prices = price_list(Tenant.objects.get(id=tenant_id))
        amounts.update({m.id: price_of(prices, m.delivered_type) for m in tenant_messages})
    return amounts


def _write_outcomes(messages: Sequence[Message]) -> None:
    """One row per outcome a message has reached, including acceptance when a delivery
    report overtook the send step's own bookkeeping. Rows are unique per (message, event),
    so whoever writes one first (finalize or a report) writes it once.

    Per message, not per chunk: a row is the academy's account of what one message cost and
    how it ended, and its unique key is what lets finalize and a late report both write
    without doubling it. Written in one INSERT … SELECT FROM unnest on PostgreSQL."""
    holds = ledger.holds_for(m.id for m in messages)
    now = clock.now()
    rows = []
    for message in messages:
        hold = holds.get(message.id)
        for event in _events(message):
            failed = event == OutcomeEvent.FAILED
            rows.append({
                "tenant_id": message.tenant_id,
                "message_id": message.id,
                "event": event,
                "success": not failed,
                "amount": _amount_moved(message, hold, event),
                "recipient_summary": mask_phone(message.phone),
                "failure_class": message.failure_class if failed else "",
                "failure_reason": message.failure_reason if failed else "",
            })
    insert_ignoring_conflicts(MessageOutcome, rows, same={"created": now})


def _events(message: Message) -> list[str]:
    events = []
    if message.accepted_at or message.status != MessageStatus.FAILED:
        events.append(OutcomeEvent.ACCEPTED)
    if message.status != MessageStatus.ACCEPTED:
        events.append(_EVENTS[message.status])
    return events


def _amount_moved(message: Message, hold: ledger.HoldState | None, event: str):
    """The credit an outcome moved: charged on acceptance (on delivery for AlimTalk with
    fallback), given back when the message failed after acceptance. Per message, the rows
    add up to what the academy finally paid."""
    if hold is None:
        return 0
    if event == OutcomeEvent.FAILED:
        return -hold.captured_amount if hold.refunded else 0
    charged_on_delivery = bool(message.fallback_type)
    charged_now = (event == OutcomeEvent.DELIVERED) == charged_on_delivery
    return hold.captured_amount if charged_now else 0
