"""Korean words for the codes the pages show, taken from the models' own choices (one vocabulary).

The choices read "한국어 (English)"; staff see the Korean part.
"""

from django.db.models import Choices

from billing.models import EntryKind, MessageType
from messaging.failures import FailureClass
from messaging.models import MessageMode, MessageStatus, Purpose, SendRequestStatus, SendTo, SkipReason
from messaging.operations.pauses import PAUSED
from messaging.selectors import korean
from tenants.models import RecipientKind, TemplateStatus


def korean_labels(choices: type[Choices]) -> dict[str, str]:
    return {value: korean(label) for value, label in choices.choices}


STATUSES = korean_labels(MessageStatus) | {PAUSED: "일시 중지"}
SKIP_REASONS = korean_labels(SkipReason)
FAILURES = korean_labels(FailureClass)
MODES = korean_labels(MessageMode)
PURPOSES = korean_labels(Purpose)
SEND_TO = korean_labels(SendTo)
RECIPIENTS = korean_labels(RecipientKind)
LEDGER_KINDS = korean_labels(EntryKind)
SEND_REQUEST_STATUSES = korean_labels(SendRequestStatus)
TEMPLATE_STATUSES = korean_labels(TemplateStatus)
# billing's labels say the byte limits in English; staff know the types by these names.
MESSAGE_TYPES = {MessageType.SMS: "단문(SMS)", MessageType.LMS: "장문(LMS)", MessageType.MMS: "MMS",
                 MessageType.ATA: "알림톡"}
