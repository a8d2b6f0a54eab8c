"""Request and response shapes of the messaging API (also the OpenAPI schema)."""

from rest_framework import serializers
from rest_framework.utils import html

from messaging.compose.refusals import Refusal, RefusalCode
from messaging.compose.send_requests import SendInput
from messaging.models import MessageMode, Purpose, SendTo
from tenants.models import RecipientKind

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
    cancelled_at = serializers.DateTimeField(help_text="When the first cancel was made.")
    cancelled = serializers.IntegerField(help_text="Messages cancelled before they went to Solapi (all cancels).")
    cancelled_now = serializers.IntegerField(help_text="Of them, cancelled by this call (0 when repeated).")
    released = serializers.DecimalField(max_digits=14, decimal_places=2,
                                        help_text="The credit of the cancelled messages, released.")
    accepted = serializers.IntegerField(help_text="Messages Solapi had accepted before the cancel: they are charged.")
    in_flight = serializers.IntegerField(
        help_text="Messages whose group may already have reached Solapi: they finish, charged only if accepted.")
