"""What Solapi delivered for a message: an AlimTalk with fallback may have gone out as SMS/LMS,
and is charged the price of what was delivered, however Solapi says so:

- the report's `type` is the text type it became;
- `type` stays ATA, with `replacement: true`;
- nothing per message: only the group's count.sentReplacement counts the fallbacks
  (settled by attribute_by_group_count once the group is complete, messaging/reports/books.py).

The same rules read webhooks and polled group listings.
"""

from collections.abc import Sequence

from billing.models import MessageType
from messaging.models import Message

_TYPES = frozenset(MessageType.values)


def delivered_type(message: Message, reported_type: str, replacement: bool | None, delivered: bool) -> str:
    """The type Solapi delivered, or "" while it is not known (the group's count decides then)."""
    reported = reported_type if reported_type in _TYPES else ""
    if not (delivered and message.fallback_type):
        return reported
    if reported and reported != MessageType.ATA:
        return reported
    if replacement:
        return message.fallback_type
    if replacement is False:
        return MessageType.ATA
    return ""


def attribute_by_group_count(unknown: Sequence[Message], *, sent_replacement: int, known_fallbacks: int) -> bool:
    """Give each delivered message of a group whose report did not say what it became a type,
    from Solapi's count of fallbacks in the group. Decidable when all of them or none of them
    fell back; otherwise they count as AlimTalk (what Kakao would have charged) and False is
    returned, so the caller raises it (the group's books then show the difference)."""
    remaining = sent_replacement - known_fallbacks
    decided = remaining in (0, len(unknown))
    for message in unknown:
        fell_back = decided and remaining > 0
        message.delivered_type = message.fallback_type if fell_back else MessageType.ATA
    return decided
