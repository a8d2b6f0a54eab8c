"""Request and response shapes of the messaging API (also the OpenAPI schema)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from rest_framework import serializers
from rest_framework.utils import html

from messaging.api.paging import PageQuerySerializer, page_serializer
from messaging.compose.refusals import Refusal, RefusalCode
from messaging.compose.send_requests import SendInput
from messaging.failures import FailureClass
from messaging.models import MessageMode, MessageStatus, Purpose, SendRequestStatus, SendTo
from tenants.models import RecipientKind, TemplateStatus
from tenants.selectors import ConsentFilter

# Sizes the API accepts. Lists and objects are measured before their items are validated,
# so an oversized one costs a length check, not one error per item (tests/api/test_limits.py).
MAX_RECIPIENT_STUDENTS = 10_000
MAX_RECIPIENT_CLASSES = 100
# An AlimTalk template has a handful of variables; each is stored once per send request.
MAX_REPLACEMENTS = 20
MAX_REPLACEMENT_KEY_LENGTH = 30
MAX_REPLACEMENT_VALUE_LENGTH = 200
# Invalid items reported per list: enough to fix the request, never an echo of all of it.
MAX_ITEM_ERRORS = 5


def refuse_oversized(field: serializers.Field, items) -> None:
    """Refuse the whole request when a list or object has more items than `field.max_items`."""
    if len(items) > field.max_items:
        raise Refusal(RefusalCode.TOO_MANY_ITEMS, field=field.field_name, count=len(items), limit=field.max_items,
                      extra={"field": field.field_name, "count": len(items), "limit": field.max_items})


class BoundedListField(serializers.ListField):
    """A list refused whole when too long, and whose item errors stop after MAX_ITEM_ERRORS."""

    def __init__(self, *, max_items: int, **kwargs):
        self.max_items = max_items
        super().__init__(max_length=max_items, **kwargs)

    def to_internal_value(self, data):
        if html.is_html_input(data):
            data = html.parse_html_list(data, default=[])
        if isinstance(data, list | tuple):
            refuse_oversized(self, data)
        return super().to_internal_value(data)

    def run_child_validation(self, data):
        if _plain_integers_within_bounds(self.child, data):
            # What the per-item validation returns, without 10,000 calls of it (about 30 ms of a send).
            return list(data)
        result, errors = [], {}
        for index, item in enumerate(data):
            try:
                result.append(self.child.run_validation(item))
            except serializers.ValidationError as exc:
                errors[index] = exc.detail
                if len(errors) == MAX_ITEM_ERRORS:
                    break
        if errors:
            raise serializers.ValidationError(errors)
        return result


def _plain_integers_within_bounds(child: serializers.Field, data) -> bool:
    """Whether every item is an int (not a bool, not a string) that an IntegerField `child`,
    validated by its bounds alone, takes as it is."""
    if type(child) is not serializers.IntegerField or not data:
        return False
    if not all(isinstance(v, MinValueValidator | MaxValueValidator) for v in child.validators):
        return False
    if not all(type(item) is int for item in data):
        return False
    return ((child.min_value is None or min(data) >= child.min_value)
            and (child.max_value is None or max(data) <= child.max_value))


class ReplacementsField(serializers.DictField):
    """DictField validates the values only, but the keys are stored and fingerprinted too.
    Checked before the values, whose errors are keyed by them."""

    max_items = MAX_REPLACEMENTS
    # Also refuses NUL and lone surrogates: valid JSON escapes that neither UTF-8 nor PostgreSQL can hold.
    key_field = serializers.CharField(max_length=MAX_REPLACEMENT_KEY_LENGTH, allow_blank=True,
                                      trim_whitespace=False)

    def to_internal_value(self, data):
        if html.is_html_input(data):
            data = html.parse_html_dict(data)
        if isinstance(data, dict):
            refuse_oversized(self, data)
            for key in data:
                self.key_field.run_validation(str(key))
        return super().to_internal_value(data)


class SendInputSerializer(serializers.Serializer):
    student_ids = BoundedListField(
        child=serializers.IntegerField(min_value=1, max_value=2**62), max_items=MAX_RECIPIENT_STUDENTS, default=list
    )
    class_ids = BoundedListField(
        child=serializers.IntegerField(min_value=1, max_value=2**62), max_items=MAX_RECIPIENT_CLASSES, default=list,
        help_text="Classes (반): every student of each receives the message; a student also in student_ids, or in "
                  "two of the classes, receives it once.",
    )
    send_to = serializers.ChoiceField(choices=SendTo.choices, default=SendTo.PARENT)
    message_mode = serializers.ChoiceField(choices=MessageMode.choices, default=MessageMode.SMS)
    # Required: staff declare whether a message is an ad, which decides the rules it must meet.
    purpose = serializers.ChoiceField(choices=Purpose.choices)
    body = serializers.CharField(allow_blank=True, default="", max_length=4000, trim_whitespace=False)
    subject = serializers.CharField(allow_blank=True, default="", max_length=100)
    template_id = serializers.CharField(allow_blank=True, default="", max_length=64)
    # Shared by every recipient; each key must be a variable of the text (or template).
    alimtalk_replacements = ReplacementsField(
        child=serializers.CharField(max_length=MAX_REPLACEMENT_VALUE_LENGTH, allow_blank=True), default=dict
    )
    send_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None,
        help_text="Schedule the send (ISO 8601 with its offset, e.g. 2026-12-01T09:00:00+09:00): nothing goes out "
                  "before it, its credit is held now, and it can be cancelled until it starts. At most 90 days "
                  "ahead; an ad not between 21:00 and 08:00 KST.",
    )

    def to_send_input(self) -> SendInput:
        return SendInput(**self.validated_data)


class SkippedSerializer(serializers.Serializer):
    student_id = serializers.IntegerField()
    recipient = serializers.CharField()
    reason = serializers.CharField()
    student_name = serializers.CharField(required=False, help_text="With unsupported_characters_in_name: whose name.")
    characters = serializers.ListField(child=serializers.CharField(), required=False,
                                       help_text="With unsupported_characters_in_name: what SMS/LMS cannot carry.")


class QueuedBehindSerializer(serializers.Serializer):
    requests = serializers.IntegerField(help_text="Send requests ahead of this one on its queue.")
    messages = serializers.IntegerField(help_text="Their messages not yet handed to Solapi.")


class BilingualMessageSerializer(serializers.Serializer):
    ko = serializers.CharField()
    en = serializers.CharField()


class SendAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status_url = serializers.CharField()
    accepted = serializers.IntegerField(help_text="Messages that will be sent.")
    estimated_cost = serializers.DecimalField(max_digits=14, decimal_places=2)
    dispatched = serializers.BooleanField(help_text="False when the broker was unreachable; beat publishes it later.")
    skipped = SkippedSerializer(many=True)
    deferred = serializers.IntegerField(help_text="Ads written at night for recipients without night consent.")
    deferred_until = serializers.DateTimeField(allow_null=True, help_text="When the first deferred one goes out.")
    send_at = serializers.DateTimeField(allow_null=True, help_text="A scheduled send: when it starts.")
    queued_behind = QueuedBehindSerializer(help_text="What was ahead of this request on its queue when it was "
                                                     "accepted (docs/exactly-once.md, \"Back-pressure\").")
    estimated_start = serializers.DateTimeField(help_text="When sending should start (KST): what is ahead, at the "
                                                          "rate the queue drained lately. A guide, not a promise.")
    delayed = serializers.BooleanField(help_text="The estimated start is more than MESSAGING_BACKLOG_WARN_SECONDS "
                                                 "away. The request is accepted all the same.")
    delay_messages = BilingualMessageSerializer(allow_null=True, help_text="With delayed: what to tell staff.")


class PreviewRecipientSerializer(serializers.Serializer):
    student_id = serializers.IntegerField()
    recipient = serializers.CharField()
    phone = serializers.CharField()
    text = serializers.CharField()
    type = serializers.CharField()
    fallback_type = serializers.CharField()
    bytes = serializers.IntegerField()
    price = serializers.DecimalField(max_digits=14, decimal_places=2)
    skip_reason = serializers.CharField()
    not_before = serializers.DateTimeField(allow_null=True)


class PreviewSerializer(serializers.Serializer):
    recipients = PreviewRecipientSerializer(many=True)
    sendable = serializers.IntegerField()
    skipped = serializers.IntegerField()
    total_cost = serializers.DecimalField(max_digits=14, decimal_places=2)
    available = serializers.DecimalField(max_digits=14, decimal_places=2)
    sufficient_credit = serializers.BooleanField()
    warnings = serializers.ListField(child=serializers.DictField())


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    messages = serializers.DictField(child=serializers.CharField())


class ConsentInputSerializer(serializers.Serializer):
    student_id = serializers.IntegerField(min_value=1, max_value=2**62)
    recipient = serializers.ChoiceField(choices=RecipientKind.choices)
    marketing = serializers.BooleanField(help_text="Agreed to advertising (정보통신망법 §50).")
    night = serializers.BooleanField(default=False, help_text="Also agreed to ads between 21:00 and 08:00.")


class ConsentSerializer(serializers.Serializer):
    student_id = serializers.IntegerField()
    recipient = serializers.CharField()
    marketing_consented_at = serializers.DateTimeField(allow_null=True)
    night_consented_at = serializers.DateTimeField(allow_null=True)
    withdrawn_at = serializers.DateTimeField(allow_null=True)


class OptOutInputSerializer(serializers.Serializer):
    phone = serializers.CharField(max_length=20)


class CancelOutcomeSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="send_request_id")
    status_url = serializers.CharField()
    cancelled_at = serializers.DateTimeField(
        allow_null=True, help_text="When the first cancel was made; null when the send had finished before it.")
    cancelled = serializers.IntegerField(help_text="Messages cancelled before they went to Solapi (all cancels).")
    cancelled_now = serializers.IntegerField(help_text="Of them, cancelled by this call (0 when repeated).")
    released = serializers.DecimalField(max_digits=14, decimal_places=2,
                                        help_text="The credit of the cancelled messages, released.")
    accepted = serializers.IntegerField(help_text="Messages Solapi had accepted before the cancel: they are charged.")
    in_flight = serializers.IntegerField(
        help_text="Messages whose group may already have reached Solapi: they finish, charged only if accepted.")


class OptOutSerializer(serializers.Serializer):
    phone = serializers.CharField()
    reason = serializers.CharField()
    source = serializers.CharField()


# --- credits -----------------------------------------------------------------------------


class LedgerEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="top_up, hold, capture, release, refund or adjustment.")
    balance_delta = serializers.DecimalField(max_digits=14, decimal_places=2)
    held_delta = serializers.DecimalField(max_digits=14, decimal_places=2)
    balance_after = serializers.DecimalField(max_digits=14, decimal_places=2)
    held_after = serializers.DecimalField(max_digits=14, decimal_places=2)
    message_id = serializers.IntegerField(allow_null=True,
                                          help_text="The message, when the movement was for one message only.")
    message_count = serializers.IntegerField(help_text="How many messages' credit it moved: a chunk's hold or "
                                                       "capture is one entry (0 for a top-up or an adjustment).")
    memo = serializers.CharField()
    created = serializers.DateTimeField()


class CreditsSerializer(serializers.Serializer):
    balance = serializers.DecimalField(max_digits=14, decimal_places=2)
    held = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Held for sends not settled yet.")
    available = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="balance - held.")
    ledger = LedgerEntrySerializer(many=True, help_text="The latest movements, newest first.")


# --- students, classes, templates ----------------------------------------------------------


class StudentQuerySerializer(PageQuerySerializer):
    search = serializers.CharField(max_length=50, required=False, default="", allow_blank=True,
                                   help_text="A name (or part of it), or the last digits of a phone number.")
    class_id = serializers.IntegerField(min_value=1, max_value=2**62, required=False, default=None)
    grade = serializers.IntegerField(min_value=1, max_value=12, required=False, default=None,
                                     help_text="1-6 elementary, 7-9 middle, 10-12 high school.")
    has_parent_phone = serializers.BooleanField(required=False, default=None, allow_null=True)
    consent = serializers.ChoiceField(choices=ConsentFilter.CHOICES, required=False, default=None,
                                      help_text="given: the student or the parent has marketing consent in force.")


class StudentConsentSerializer(serializers.Serializer):
    student = serializers.BooleanField(help_text="Marketing consent in force for the student's own number.")
    parent = serializers.BooleanField(help_text="Marketing consent in force for the parent's number.")


class StudentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    grade = serializers.IntegerField(allow_null=True)
    phone = serializers.CharField(help_text="Masked (010****5678); empty when none.")
    parent_phone = serializers.CharField(help_text="Masked; empty when none.")
    class_ids = serializers.ListField(child=serializers.IntegerField())
    consent = StudentConsentSerializer()


StudentPageSerializer = page_serializer("StudentPage", StudentSerializer)


class SchoolClassSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    student_count = serializers.IntegerField()


class TemplateSerializer(serializers.Serializer):
    template_id = serializers.CharField(help_text="Solapi's template id: the send's template_id.")
    name = serializers.CharField()
    content = serializers.CharField()
    status = serializers.ChoiceField(choices=TemplateStatus.choices)
    approved = serializers.BooleanField(help_text="Only approved templates can be sent.")
    variables = serializers.ListField(child=serializers.CharField(),
                                      help_text="Its #{변수}; 이름 is filled per student, the others from "
                                                "alimtalk_replacements.")


# --- send requests and their messages ------------------------------------------------------


class SendRequestQuerySerializer(PageQuerySerializer):
    status = serializers.ChoiceField(choices=SendRequestStatus.choices, required=False, default=None)
    purpose = serializers.ChoiceField(choices=Purpose.choices, required=False, default=None)
    created_from = serializers.DateField(required=False, default=None, help_text="A day in Korea, included.")
    created_to = serializers.DateField(required=False, default=None, help_text="A day in Korea, included.")


class SendRequestSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status_url = serializers.CharField()
    created = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=SendRequestStatus.choices)
    purpose = serializers.CharField()
    mode = serializers.CharField()
    send_to = serializers.CharField()
    body = serializers.CharField()
    subject = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Messages by status, and total.")
    estimated_cost = serializers.DecimalField(max_digits=14, decimal_places=2)
    send_at = serializers.DateTimeField(allow_null=True)
    cancelled = serializers.DateTimeField(allow_null=True)
    completed = serializers.DateTimeField(allow_null=True)


SendRequestPageSerializer = page_serializer("SendRequestPage", SendRequestSummarySerializer)


class MessageQuerySerializer(PageQuerySerializer):
    status = serializers.ChoiceField(choices=MessageStatus.choices, required=False, default=None)
    failure_class = serializers.ChoiceField(choices=FailureClass.choices, required=False, default=None)


class MessageRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    student_id = serializers.IntegerField(allow_null=True)
    student_name = serializers.CharField()
    recipient = serializers.CharField()
    phone = serializers.CharField(help_text="Masked (010****5678).")
    type = serializers.CharField()
    text = serializers.CharField()
    price = serializers.DecimalField(max_digits=14, decimal_places=2)
    status = serializers.CharField(help_text="A message status, or `paused` while a platform pause holds it.")
    failure_class = serializers.CharField()
    skip_reason = serializers.CharField()
    reason = serializers.CharField(help_text="Why it failed, was skipped or is paused, in Korean.")
    failure_detail = serializers.CharField(help_text="What Solapi or the pipeline said.")
    accepted_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)


MessagePageSerializer = page_serializer("MessagePage", MessageRowSerializer)


class PauseSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    reason_code = serializers.CharField()
    reason = serializers.CharField()
    detail = serializers.CharField()


class DetailMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    student_id = serializers.IntegerField(allow_null=True)
    recipient_kind = serializers.CharField()
    phone = serializers.CharField()
    message_type = serializers.CharField()
    price = serializers.DecimalField(max_digits=14, decimal_places=2)
    status = serializers.CharField()
    skip_reason = serializers.CharField()
    failure_class = serializers.CharField()
    failure_reason = serializers.CharField()
    solapi_status_code = serializers.CharField()
    accepted_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    paused = PauseSerializer(allow_null=True)


class ProgressSerializer(serializers.Serializer):
    """How far a send has come (messaging/operations/progress.py). Times: Korea's, ISO 8601."""

    running = serializers.BooleanField()
    percent_final = serializers.FloatField(help_text="Messages delivered, failed or skipped, of all.")
    percent_sent = serializers.FloatField(help_text="Messages handed to Solapi or settled, of all.")
    throughput_per_second = serializers.FloatField(help_text="Messages handed to Solapi per second since the "
                                                             "dispatch.")
    started = serializers.CharField()
    estimated_finish = serializers.CharField(allow_null=True, help_text="When the rest should be handed over at "
                                                                        "this pace; null before the first and after "
                                                                        "the last.")
    completed = serializers.CharField(allow_null=True)


class SendRequestDetailSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=SendRequestStatus.choices)
    mode = serializers.CharField()
    purpose = serializers.CharField()
    send_at = serializers.DateTimeField(allow_null=True)
    cancelled = serializers.DateTimeField(allow_null=True)
    dispatched = serializers.BooleanField()
    completed = serializers.DateTimeField(allow_null=True)
    estimated_cost = serializers.DecimalField(max_digits=14, decimal_places=2)
    counts = serializers.DictField(child=serializers.IntegerField(),
                                   help_text="Messages by status (and `paused`), and total.")
    progress = ProgressSerializer()
    paused = PauseSerializer(allow_null=True)
    messages = DetailMessageSerializer(many=True)
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    total_messages = serializers.IntegerField()
