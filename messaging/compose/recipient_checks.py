"""May this recipient get this message now? Not on the academy's suppression list; for an
ad, with marketing consent, and between 21:00 and 08:00 KST only with night consent (the
others wait for 08:00).

Asked when a send is planned, and asked again for every message when its credit is
reserved and when staff retry it: between a 22:30 compose and the 08:00 release a parent
may opt out or withdraw consent, and a retry or a stale chunk may reach the pipeline at
night (정보통신망법 §50, docs/security.md section 2). What the books say is read in two
queries, one for the suppression list and one for consents, however many messages.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from messaging.compose import rules, suppression
from messaging.models import Purpose, SkipReason, SuppressionReason
from messaging.selectors import consents_for

NO_CONSENT = rules.Consent(ads=False, night_ads=False)

_SUPPRESSION_SKIPS = {
    SuppressionReason.OPTED_OUT: SkipReason.OPTED_OUT,
    SuppressionReason.INVALID: SkipReason.INVALID_PHONE,
    SuppressionReason.BLOCKED: SkipReason.BLOCKED,
}


class Recipient(NamedTuple):
    """Who a message goes to. A tuple: planning makes one per recipient, up to 10,000 a send."""

    student_id: int | None
    kind: str
    phone: str


@dataclass(frozen=True)
class Standing:
    """What the suppression list and the consents say about some recipients, as read once."""

    purpose: str
    suppressed: Mapping[str, str]
    consents: Mapping[tuple[int, str], rules.Consent]

    def consent(self, recipient: Recipient) -> rules.Consent:
        return self.consents.get((recipient.student_id, recipient.kind), NO_CONSENT)

    def skip_reason(self, recipient: Recipient) -> str:
        """Why this recipient may not get the message at all; "" when they may."""
        if recipient.phone in self.suppressed:
            return _SUPPRESSION_SKIPS[self.suppressed[recipient.phone]]
        if self.purpose == Purpose.AD and not self.consent(recipient).ads:
            return SkipReason.NO_MARKETING_CONSENT
        return ""

    def must_wait(self, recipient: Recipient, now: datetime) -> bool:
        """An ad at night to a recipient without night consent waits for 08:00 KST."""
        return (self.purpose == Purpose.AD and rules.in_night_window(now)
                and not self.consent(recipient).night_ads)


def standing_of(*, tenant_id: int, purpose: str, phones: Iterable[str],
                student_ids: Iterable[int | None]) -> Standing:
    """Read the suppression list for these numbers (one query) and, for an ad, these
    students' consents (one query)."""
    student_ids = sorted({i for i in student_ids if i is not None})
    return Standing(
        purpose=purpose,
        suppressed=suppression.suppressed(tenant_id, [p for p in phones if p]),
        consents=consents_for(student_ids) if purpose == Purpose.AD and student_ids else {},
    )
