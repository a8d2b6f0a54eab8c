"""The daily message limit of an academy: a ceiling on what one academy (or one stolen
token) can send in a day, whatever its credit."""

from datetime import datetime, time

from django.conf import settings
from django.db.models import Sum

from messaging.compose import rules
from messaging.compose.refusals import Refusal, RefusalCode
from messaging.models import SendRequest
from project import clock
from tenants.models import Tenant


def check_daily_limit(tenant: Tenant, requested: int, *, now: datetime | None = None) -> None:
    """Refuse a send that would take the academy's accepted messages of the day (KST) over
    MESSAGING_DAILY_MESSAGE_LIMIT. Two sends racing can pass it together: it is a ceiling
    against runaway use, not an exact quota.

    Summed from the day's send requests (their `accepted_count`, on the (tenant, created)
    index), not counted from their messages: a count of the message rows grew with the
    academy's day, up to the limit itself (10 - 36 ms per send at 200,000 a day). A message
    accepted and later skipped or cancelled still counts: it was asked for."""
    limit = settings.MESSAGING_DAILY_MESSAGE_LIMIT
    now = now or clock.kst_now()
    day_start = datetime.combine(now.astimezone(rules.KST).date(), time.min, tzinfo=rules.KST)
    sent = SendRequest.objects.filter(tenant=tenant, created__gte=day_start).aggregate(
        sent=Sum("accepted_count"))["sent"] or 0
    if sent + requested > limit:
        raise Refusal(RefusalCode.DAILY_MESSAGE_LIMIT, limit=limit, sent=sent, requested=requested,
                      extra={"limit": limit, "sent_today": sent, "requested": requested})
