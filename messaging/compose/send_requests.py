"""Accepting a send: validate, plan, persist every recipient, then publish one task.

Everything is checked before anything is written: the academy's state, the students,
the template, the text, the price and the credit. Then the request and one row per
recipient (skipped ones too, with their reason) are written in one transaction, and one
dispatch task is published after the commit: never one per recipient, and none for a small
send while one already due will take it (messaging/pipeline/outbox.py, request_dispatch).
"""

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.db import IntegrityError, transaction

from billing import ledger
from billing.ledger import HoldRequest, account_for
from billing.models import CreditAccount
from billing.pricing import price_list
from messaging.compose import limits, rules
from messaging.compose.message_rows import write_messages
from messaging.compose.planning import Draft, PlannedMessage, StudentContact, plan_messages, recipients
from messaging.compose.recipient_checks import standing_of
from messaging.compose.refusals import ACADEMY_REFUSALS, Refusal, RefusalCode
from messaging.eligibility import why_academy_cannot_send
from messaging.models import MessageMode, Purpose, SendRequest, SendTo
from messaging.operations.backlog import delay_messages, kst_iso, recent_backlog_for
from messaging.pipeline import outbox
from messaging.pipeline.queues import queue_for
from messaging.student_guard import lock_students_for_messages
from project import clock
from project.sql import in_values
from tenants.models import AlimTalkTemplate, Student, TemplateStatus, Tenant
from tenants.selectors import class_students

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendInput:
    student_ids: list[int] = field(default_factory=list)
    # Every student of these classes (반) receives it too; a student in both lists, or in
    # two of the classes, receives it once.
    class_ids: list[int] = field(default_factory=list)
    send_to: str = SendTo.PARENT
    message_mode: str = MessageMode.SMS
    body: str = ""
    subject: str = ""
    template_id: str = ""
    alimtalk_replacements: dict[str, str] = field(default_factory=dict)
    purpose: str = Purpose.INFO
    # A scheduled send: nothing goes out before this moment (cancellable until then).
    send_at: datetime | None = None

    def fingerprint(self) -> str:
        # Fields added later count only when used: a replayed key of a request stored before
        # they existed keeps its fingerprint.
        # The fields as they are, not asdict(), which deep-copies all 10,000 student ids first:
        # the same JSON.
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values = {k: v for k, v in values.items() if k not in _LATER_FIELDS or v != _LATER_FIELDS[k]}
        canonical = json.dumps(values, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


_LATER_FIELDS: dict[str, Any] = {"class_ids": [], "send_at": None}


@dataclass
class SendPlan:
    tenant: Tenant
    data: SendInput
    draft: Draft
    messages: list[PlannedMessage]
    account: CreditAccount  # as read when planning: what `available` shows; the hold locks it anew

    @property
    def available(self) -> Decimal:
        return self.account.available

    # Cached: a plan is not changed once made, and a send asks these several times of up to 10,000 messages.
    @cached_property
    def sendable(self) -> list[PlannedMessage]:
        return [m for m in self.messages if not m.skipped]

    @cached_property
    def estimated_cost(self) -> Decimal:
        return sum((m.price for m in self.sendable), Decimal("0"))

    def skipped(self) -> list[dict[str, Any]]:
        return [{"student_id": m.student_id, "recipient": m.recipient_kind, "reason": m.skip_reason, **m.skip_detail}
                for m in self.messages if m.skipped]

    @cached_property
    def deferred(self) -> list[PlannedMessage]:
        """Ads written at night for recipients without night consent: sent from 08:00 KST."""
        return [m for m in self.sendable if m.not_before and m.not_before != self.data.send_at]


def plan_send(*, tenant: Tenant, data: SendInput) -> SendPlan:
    """Everything a send needs, checked; raises Refusal. Writes nothing."""
    failure = why_academy_cannot_send(tenant)
    if failure:
        raise Refusal(ACADEMY_REFUSALS[failure], sender=tenant.messaging_sender)
    rules.check_ad_channel(purpose=data.purpose, mode=data.message_mode)
    rules.check_send_at(purpose=data.purpose, send_at=data.send_at, now=clock.now())
    template = _template_for(tenant, data)
    if not data.body.strip() and not template:
        raise Refusal(RefusalCode.BODY_EMPTY)
    students = _students(tenant, data.student_ids, data.class_ids)
    draft = Draft(mode=data.message_mode, send_to=data.send_to, body=data.body, subject=data.subject,
                  template=template, replacements=data.alimtalk_replacements, purpose=data.purpose)
    rules.check_ad_text(tenant=tenant, purpose=data.purpose, text=draft.source_text)
    standing = standing_of(tenant_id=tenant.id, purpose=data.purpose, student_ids=[s.id for s in students],
                           phones=[phone for _, _, phone in recipients(students, data.send_to)])
    # A scheduled send is planned as of its time: the night window is read then.
    planned = plan_messages(draft=draft, students=students, prices=price_list(tenant), standing=standing,
                            now=data.send_at)
    if data.send_at:
        for message in planned:
            if not message.skipped:
                message.not_before = message.not_before or data.send_at
    return SendPlan(tenant=tenant, data=data, draft=draft, messages=planned, account=account_for(tenant))


def send_request_create(*, tenant: Tenant, user, data: SendInput, idempotency_key: str | None) -> dict[str, Any]:
    """Accept a send and return the API's answer. Replays of an idempotency key return
    the original answer; the same key with a different body is refused."""
    fingerprint = data.fingerprint()
    if idempotency_key:
        replay = _replay(tenant, idempotency_key, fingerprint)
        if replay is not None:
            return replay
    plan = plan_send(tenant=tenant, data=data)
    if not plan.sendable:
        raise Refusal(RefusalCode.NO_RECIPIENTS, extra={"skipped": plan.skipped()})
    limits.check_daily_limit(tenant, len(plan.sendable))
    if plan.estimated_cost > plan.available:
        raise Refusal(RefusalCode.INSUFFICIENT_CREDIT, estimated_cost=plan.estimated_cost, available=plan.available,
                      extra={"estimated_cost": str(plan.estimated_cost), "available": str(plan.available)})
    backpressure = _backpressure(plan)
    try:
        send_request = _persist(plan, user=user, idempotency_key=idempotency_key, fingerprint=fingerprint,
                                backpressure=backpressure)
    except IntegrityError:
        # The same key, committed by a concurrent request a moment ago.
        replay = _replay(tenant, idempotency_key, fingerprint) if idempotency_key else None
        if replay is None:
            raise
        return replay
    if outbox.request_dispatch(send_request):
        return send_request.response
    response = {**send_request.response, "dispatched": False}
    SendRequest.objects.filter(id=send_request.id).update(response=response)
    return response


def _replay(tenant: Tenant, key: str, fingerprint: str) -> dict[str, Any] | None:
    existing = SendRequest.objects.filter(tenant=tenant, idempotency_key=key).first()
    if existing is None:
        return None
    if existing.fingerprint != fingerprint:
        raise Refusal(RefusalCode.IDEMPOTENCY_KEY_REUSED)
    return _answer_of(existing)


def _backpressure(plan: SendPlan) -> dict[str, Any]:
    """The answer's honesty about the queue (messaging/operations/backlog.py): what is ahead
    of this request, when it should start, and whether that is later than staff should
    expect. Measured before this request's own rows exist (or up to a second earlier, by
this process: recent_backlog_for). Ads deferred to the morning, all
    of them, start then: that is the night rule, not a delay; a scheduled send starts at its
    send_at."""
    backlog = recent_backlog_for(queue_for(len(plan.sendable)))
    start, delayed = backlog.estimated_start, backlog.delayed
    if plan.deferred and len(plan.deferred) == len(plan.sendable):
        start, delayed = max(start, min(m.not_before for m in plan.deferred)), False
    if plan.data.send_at:
        # Scheduled: it starts at send_at; today's queue says nothing about that moment's.
        start, delayed = max(start, plan.data.send_at), False
    if delayed:
        logger.info("send_accepted_behind_backlog tenant=%s queue=%s requests_ahead=%s messages_ahead=%s "
                    "wait_seconds=%s", plan.tenant.id, backlog.queue, backlog.requests_ahead, backlog.messages_ahead,
                    backlog.wait_seconds)
    return {
        "queued_behind": {"requests": backlog.requests_ahead, "messages": backlog.messages_ahead},
        "estimated_start": kst_iso(start),
        "delayed": delayed,
        "delay_messages": delay_messages(backlog) if delayed else None,
    }


def _persist(plan: SendPlan, *, user, idempotency_key: str | None, fingerprint: str,
             backpressure: dict[str, Any]) -> SendRequest:
    data = plan.data
    # The answer is stored with the row, in its INSERT, not after publishing: a replay of the key
    # that arrives meanwhile (a client retrying, a concurrent duplicate) must get this answer, not
    # {}. "dispatched" is corrected if the publish fails. Everything in it is known before the
    # row exists but the row's id, which a replay adds (_replay); in the INSERT, not an UPDATE
    # after it, because this row is not ours for long (a dispatch sweeping the small requests
    # locks it: express.py) and each row version costs (issue 18's load).
    answer = {
        "accepted": len(plan.sendable),
        "estimated_cost": str(plan.estimated_cost),
        "dispatched": True,
        "skipped": plan.skipped(),
        "deferred": len(plan.deferred),
        "deferred_until": min(m.not_before for m in plan.deferred).isoformat() if plan.deferred else None,
        "send_at": data.send_at.isoformat() if data.send_at else None,
        **backpressure,
    }
    # Covered by a dispatch from its commit on (outbox.request_dispatch), unless the publish
    # fails, which clears it for the relay.
    dispatched = clock.now() if queue_for(len(plan.sendable)) in outbox.COALESCED_QUEUES else None
    with transaction.atomic():
        send_request = create_send_request(
            tenant_id=plan.tenant.id, user=user, messages=plan.messages,
            mode=data.message_mode, send_to=data.send_to, purpose=data.purpose, body=data.body,
            subject=data.subject, template=plan.draft.template, alimtalk_replacements=data.alimtalk_replacements,
            idempotency_key=idempotency_key or None, fingerprint=fingerprint, send_at=data.send_at,
            response=answer, dispatched=dispatched,
        )
        _hold_credit(plan.tenant, plan)
    send_request.response = _answer_of(send_request)
    return send_request


def _answer_of(send_request: SendRequest) -> dict[str, Any]:
    """The send's answer: the stored one, with the request's id first. (Rows written before the
    answer went into the INSERT stored the id too; merging gives the same answer.)"""
    return {"id": send_request.id, **send_request.response}


def _hold_credit(tenant: Tenant, plan: SendPlan) -> None:
    """A 202 means paid for: hold every sendable message's credit (deferred night ads too) in
    the request's own transaction, or refuse the whole request. Under the account's row lock,
    so concurrent sends racing the last credit cannot all be accepted. The reserve step finds
    these holds and does not hold again (holds are keyed by message id). The messages are this
    transaction's own: no hold can exist for them yet."""
    requests = [HoldRequest(m.message_id, m.price) for m in plan.sendable]
    try:
        ledger.hold_credit(tenant=tenant, requests=requests, all_or_nothing=True, new_messages=True,
                           account=plan.account)
    except ledger.InsufficientCredit as exc:
        raise Refusal(RefusalCode.INSUFFICIENT_CREDIT, estimated_cost=exc.requested, available=exc.available,
                      extra={"estimated_cost": str(exc.requested), "available": str(exc.available)}) from None


def create_send_request(*, tenant_id: int, user, messages: Sequence[PlannedMessage], **fields: Any) -> SendRequest:
    """The one builder of a send request and its message rows, for a send and for a staff
    resend: one row per planned message (skipped ones too, with their reason), the queue
    by how many will go out, the cost of those. `fields` are the request's own (mode, body …).
    Each planned message gets its row's id (`message_id`). Call it inside the caller's transaction."""
    sendable = [m for m in messages if not m.skipped]
    send_request = SendRequest.objects.create(
        tenant_id=tenant_id, created_by=user if user and user.is_authenticated else None,
        queue=queue_for(len(sendable)), estimated_cost=sum((m.price for m in sendable), Decimal("0")),
        accepted_count=len(sendable), **fields,
    )
    for planned, message_id in zip(messages, write_messages(send_request, messages), strict=True):
        planned.message_id = message_id
    # Still there, and kept until the commit: no foreign key checks it (messaging/student_guard.py).
    lock_students_for_messages([m.student_id for m in messages])
    return send_request


def _template_for(tenant: Tenant, data: SendInput) -> AlimTalkTemplate | None:
    if data.message_mode not in (MessageMode.ALIMTALK, MessageMode.BOTH):
        return None
    if not data.template_id:
        raise Refusal(RefusalCode.TEMPLATE_REQUIRED)
    template = AlimTalkTemplate.objects.filter(tenant=tenant, solapi_template_id=data.template_id).first()
    if template is None or template.status != TemplateStatus.APPROVED:
        raise Refusal(RefusalCode.TEMPLATE_NOT_APPROVED)
    if not tenant.kakao_pf_id:
        raise Refusal(RefusalCode.KAKAO_CHANNEL_MISSING)
    return template


def _students(tenant: Tenant, student_ids: list[int], class_ids: list[int]) -> list[StudentContact]:
    """The chosen students, then the classes' students, each once, in that order."""
    members, missing_classes = class_students(tenant, class_ids) if class_ids else ([], [])
    if missing_classes:
        # Another academy's class looks exactly like one that does not exist.
        raise Refusal(RefusalCode.CLASS_NOT_FOUND, class_ids=", ".join(map(str, missing_classes)),
                      extra={"class_ids": missing_classes})
    wanted = list(dict.fromkeys(student_ids))
    found = _contacts(tenant, wanted)
    missing = [i for i in wanted if i not in found]
    if missing:
        # Another academy's student looks exactly like one that does not exist.
        raise Refusal(RefusalCode.STUDENT_NOT_FOUND, student_ids=", ".join(map(str, missing)),
                      extra={"student_ids": missing})
    wanted = list(dict.fromkeys(wanted + members))
    if not wanted:
        raise Refusal(RefusalCode.NO_STUDENTS)
    found |= _contacts(tenant, [i for i in wanted if i not in found])
    return [found[i] for i in wanted]


def _contacts(tenant: Tenant, student_ids: list[int]) -> dict[int, StudentContact]:
    """id → contact of these students of the academy: plain rows in no particular order (the
    model's order by name would sort 10,000 names for nothing)."""
    if not student_ids:
        return {}
    rows = (Student.objects.filter(tenant=tenant, id__in=in_values(student_ids, "bigint")).order_by()
            .values_list(*StudentContact._fields))
    return {row[0]: StudentContact._make(row) for row in rows}
