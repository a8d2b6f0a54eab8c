"""Request and response shapes of the messaging API (also the OpenAPI schema)."""

from rest_framework import serializers
from rest_framework.utils import html

from messaging.compose.send_requests import SendInput
from messaging.models import MessageMode, Purpose, SendTo
from tenants.models import RecipientKind

MAX_RECIPIENT_STUDENTS = 10_000


class ReplacementsField(serializers.DictField):
    """DictField validates the values only, but the keys are stored and fingerprinted too.
    Checked before the values, whose errors are keyed by them."""

    # Also refuses NUL and lone surrogates: valid JSON escapes that neither UTF-8 nor PostgreSQL can hold.
    key_field = serializers.CharField(max_length=100, allow_blank=True, trim_whitespace=False)

    def to_internal_value(self, data):
        if html.is_html_input(data):
            data = html.parse_html_dict(data)
        if isinstance(data, dict):
            for key in data:
                self.key_field.run_validation(str(key))
        return super().to_internal_value(data)


class SendInputSerializer(serializers.Serializer):
    student_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**62), max_length=MAX_RECIPIENT_STUDENTS
    )
    send_to = serializers.ChoiceField(choices=SendTo.choices, default=SendTo.PARENT)
    message_mode = serializers.ChoiceField(choices=MessageMode.choices, default=MessageMode.SMS)
    # Required: staff declare whether a message is an ad, which decides the rules it must meet.
    purpose = serializers.ChoiceField(choices=Purpose.choices)
    body = serializers.CharField(allow_blank=True, default="", max_length=4000, trim_whitespace=False)
    subject = serializers.CharField(allow_blank=True, default="", max_length=100)
    template_id = serializers.CharField(allow_blank=True, default="", max_length=64)
    alimtalk_replacements = ReplacementsField(
        child=serializers.CharField(max_length=200, allow_blank=True), default=dict
    )

    def to_send_input(self) -> SendInput:
        return SendInput(**self.validated_data)


class SkippedSerializer(serializers.Serializer):
    student_id = serializers.IntegerField()
    recipient = serializers.CharField()
    reason = serializers.CharField()


class SendAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status_url = serializers.CharField()
    accepted = serializers.IntegerField(help_text="Messages that will be sent.")
    estimated_cost = serializers.DecimalField(max_digits=14, decimal_places=2)
    dispatched = serializers.BooleanField(help_text="False when the broker was unreachable; beat publishes it later.")
    skipped = SkippedSerializer(many=True)
    deferred = serializers.IntegerField(help_text="Ads written at night for recipients without night consent.")
    deferred_until = serializers.DateTimeField(allow_null=True, help_text="When the first deferred one goes out.")


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
