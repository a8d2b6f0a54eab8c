"""A message as Solapi registers it: one per recipient, its detected type, its registration
code, the outcome its delivery report will carry, and the JSON shapes it takes in replies."""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .codes import (
    ACCOUNT_ID,
    ATA_MAX_CHARS,
    CUSTOM_FIELD_KEY_MAX_CHARS,
    CUSTOM_FIELD_VALUE_MAX_CHARS,
    DEFAULT_COUNTRY,
    KNOWN_MESSAGE_TYPES,
    LMS_MAX_BYTES,
    NETWORK_CODE,
    SMS_MAX_BYTES,
    TEXT_MESSAGE_TYPES,
    FallbackSignal,
    MessageType,
    StatusCode,
    status_message,
)
from .errors import validation_error
from .formats import digits_only, new_message_id, timestamp

# Solapi counts SMS length in EUC-KR bytes, two per Hangul syllable. CP949 is EUC-KR plus the
# Hangul syllables KS X 1001 lacks, also two bytes each; Python's strict "euc_kr" codec spells
# those as 8-byte jamo sequences, which would turn a name such as "똠" into an LMS.
KOREAN_ENCODING = "cp949"


class Stage(StrEnum):
    REGISTER = "register"
    REPORT = "report"


@dataclass(frozen=True)
class RecipientOutcome:
    """What happens to every message to one phone number, set per test."""

    stage: Stage | None = None
    code: str | None = None
    # For ATA: Kakao fails and Solapi falls back to SMS/LMS (or reports 3104 when disableSms is on).
    fallback: bool = False

    def __post_init__(self) -> None:
        if self.stage is not None and not self.code:
            raise ValueError(f"stage {self.stage!r} needs a status code")
        if self.stage is None and not self.fallback:
            raise ValueError("an outcome needs a stage and code, or fallback=True")
        if self.stage is not None:
            object.__setattr__(self, "stage", Stage(self.stage))

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "code": self.code, "fallback": self.fallback}


@dataclass(frozen=True)
class RegistrationRules:
    """A snapshot of the account settings that decide registration, taken once per request."""

    senders: frozenset[str]
    outcomes: Mapping[str, RecipientOutcome]


@dataclass(slots=True)
class Message:
    message_id: str
    group_id: str
    to: str | None
    sender: str | None
    type: str
    text: str | None
    subject: str | None
    country: str
    image_id: str | None
    custom_fields: dict[str, str]
    kakao_options: dict[str, Any] | None
    registration_code: str
    report_code: str  # what its delivery report will say, decided at registration
    report_type: str  # differs from `type` when an ATA falls back to SMS/LMS
    date_created: str
    status_code: str = ""
    date_updated: str = ""
    date_sent: str | None = None
    date_reported: str | None = None

    def __post_init__(self) -> None:
        self.status_code = self.status_code or self.registration_code
        self.date_updated = self.date_updated or self.date_created

    @property
    def registered(self) -> bool:
        return self.registration_code == StatusCode.REGISTERED

    @property
    def sent(self) -> bool:
        return self.date_sent is not None

    @property
    def reported(self) -> bool:
        return self.date_reported is not None

    @property
    def fell_back(self) -> bool:
        return self.reported and self.report_type != self.type

    def mark_sent(self, now: str) -> None:
        self.status_code = StatusCode.SENT
        self.date_sent = self.date_updated = now

    def mark_reported(self, now: str) -> None:
        self.status_code = self.report_code
        self.date_reported = self.date_updated = now

    def summary(self) -> dict[str, Any]:
        """An item of send-many's failedMessageList and of add-messages' resultList."""
        return {
            "to": self.to,
            "from": self.sender,
            "type": self.type,
            "country": self.country,
            "messageId": self.message_id,
            "statusCode": self.registration_code,
            "statusMessage": status_message(self.registration_code),
            "accountId": ACCOUNT_ID,
            "customFields": self.custom_fields,
        }

    def list_item(self) -> dict[str, Any]:
        """An item of send-many's messageList."""
        return {
            "messageId": self.message_id,
            "statusCode": self.registration_code,
            "statusMessage": status_message(self.registration_code),
            "customFields": self.custom_fields,
        }

    def shown_type(self, signal: FallbackSignal) -> str:
        """The `type` replies show: the delivered text type after a fallback, if that is the signal."""
        return self.report_type if self.fell_back and signal is FallbackSignal.TYPE else self.type

    def replacement_field(self, signal: FallbackSignal) -> dict[str, bool]:
        """`replacement`, as far as the signal shows it: Solapi's `false` on a message that did
        not fall back; `true` on one that did only with the "replacement" signal (so the changed
        `type` is tested on its own); nothing at all with "group_count"."""
        if signal is FallbackSignal.GROUP_COUNT or (self.fell_back and signal is FallbackSignal.TYPE):
            return {}
        return {"replacement": self.fell_back}

    def detail(self, signal: FallbackSignal = FallbackSignal.TYPE) -> dict[str, Any]:
        """A value of the group-messages listing."""
        shown_type = self.shown_type(signal)
        return {
            "messageId": self.message_id,
            "groupId": self.group_id,
            # The SDK's Message model requires `to` and accepts only known types.
            "to": self.to or "",
            "from": self.sender,
            "type": shown_type if shown_type in KNOWN_MESSAGE_TYPES else None,
            **self.replacement_field(signal),
            "text": self.text,
            "subject": self.subject,
            "imageId": self.image_id,
            "country": self.country,
            "autoTypeDetect": True,
            "customFields": self.custom_fields,
            "kakaoOptions": self.kakao_options,
            "statusCode": self.status_code,
            "statusMessage": status_message(self.status_code),
            "accountId": ACCOUNT_ID,
            "dateCreated": self.date_created,
            "dateUpdated": self.date_updated,
        }

    def report(self, signal: FallbackSignal = FallbackSignal.TYPE) -> dict[str, Any]:
        """The `data` of a single-report webhook event."""
        return {
            "messageId": self.message_id,
            "groupId": self.group_id,
            "type": self.shown_type(signal),
            **self.replacement_field(signal),
            "to": self.to,
            "from": self.sender,
            "statusCode": self.status_code,
            "statusMessage": status_message(self.status_code),
            "dateProcessed": self.date_sent,
            "dateReported": self.date_reported,
            "dateReceived": self.date_reported,
            "networkCode": NETWORK_CODE,
            "customFields": self.custom_fields,
        }


def register_messages(raw_messages: Any, group_id: str, rules: RegistrationRules) -> list[Message]:
    """One Message per recipient of each submitted message, in order. Problems with a single
    message become its status code; only a malformed request raises (ValidationError)."""
    if not isinstance(raw_messages, list) or not raw_messages:
        raise validation_error("messages 의 데이터 타입은 배열이어야 됩니다.")
    now = timestamp()
    registered = []
    for raw in raw_messages:
        if not isinstance(raw, dict):
            raise validation_error("messages 의 각 항목은 객체여야 합니다.")
        for to in _recipients(raw.get("to")):
            registered.append(_register(raw, to, group_id, rules, now))
    return registered


def count_recipients(raw_messages: Any) -> int:
    """How many messages a request would register, for the per-request limit."""
    if not isinstance(raw_messages, list):
        return 0
    return sum(len(_recipients(raw.get("to"))) if isinstance(raw, dict) else 1 for raw in raw_messages)


def _recipients(to: Any) -> list[str | None]:
    # Solapi takes a list of numbers in `to` as one message per number.
    if isinstance(to, list):
        return [_text(number) for number in to] or [None]
    return [_text(to)]


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _measure(text: str | None) -> tuple[int, bool]:
    """Length in Korean-encoding bytes, and whether every character is encodable."""
    if not text:
        return 0, True
    try:
        return len(text.encode(KOREAN_ENCODING)), True
    except UnicodeEncodeError:
        return len(text.encode(KOREAN_ENCODING, errors="replace")), False


@dataclass(frozen=True)
class _Submission:
    """One recipient's share of a submitted message, read from the request JSON."""

    to: str | None
    sender: str | None
    type: str
    text: str | None
    subject: str | None
    image_id: str | None
    country: str
    kakao: dict[str, Any] | None
    custom_fields: Any
    text_bytes: int
    encodable: bool

    @classmethod
    def read(cls, raw: dict[str, Any], to: str | None) -> "_Submission":
        text, subject, image_id = _text(raw.get("text")), _text(raw.get("subject")), _text(raw.get("imageId"))
        kakao = raw.get("kakaoOptions") if isinstance(raw.get("kakaoOptions"), dict) else None
        text_bytes, encodable = _measure(text)
        return cls(
            to=to,
            sender=_text(raw.get("from")),
            type=_text(raw.get("type")) or _detect_type(text_bytes, subject, kakao, image_id),
            text=text,
            subject=subject,
            image_id=image_id,
            country=_text(raw.get("country")) or DEFAULT_COUNTRY,
            kakao=kakao,
            custom_fields=raw.get("customFields") or {},
            text_bytes=text_bytes,
            encodable=encodable,
        )

    @property
    def custom_fields_ok(self) -> bool:
        return isinstance(self.custom_fields, dict) and all(
            isinstance(key, str)
            and isinstance(value, str)
            and len(key) <= CUSTOM_FIELD_KEY_MAX_CHARS
            and len(value) <= CUSTOM_FIELD_VALUE_MAX_CHARS
            for key, value in self.custom_fields.items()
        )

    def registration_code(self, rules: RegistrationRules) -> str:
        if not self.to or not self.sender:
            return StatusCode.MISSING_REQUIRED_FIELD
        if self.type not in KNOWN_MESSAGE_TYPES:
            return StatusCode.INVALID_TYPE
        if digits_only(self.sender) not in rules.senders:
            return StatusCode.SENDER_NOT_REGISTERED
        if not self.custom_fields_ok:
            return StatusCode.INVALID_CUSTOM_FIELDS
        if self.type in TEXT_MESSAGE_TYPES:
            return self._text_code()
        if self.type == MessageType.ATA:
            return self._alimtalk_code()
        return StatusCode.REGISTERED

    def _text_code(self) -> str:
        if not self.text:
            return StatusCode.MISSING_REQUIRED_FIELD
        if not self.encodable:
            return StatusCode.OUTSIDE_EUC_KR
        limit = SMS_MAX_BYTES if self.type == MessageType.SMS else LMS_MAX_BYTES
        return StatusCode.TOO_LONG if self.text_bytes > limit else StatusCode.REGISTERED

    def _alimtalk_code(self) -> str:
        if not self.kakao or not self.kakao.get("pfId"):
            return StatusCode.INVALID_PF_ID
        if not self.kakao.get("templateId"):
            return StatusCode.INVALID_TEMPLATE_ID
        if self.text and len(self.text) > ATA_MAX_CHARS:
            return StatusCode.TOO_LONG
        return StatusCode.REGISTERED

    def planned_report(self, outcome: RecipientOutcome | None) -> tuple[str, str]:
        """The statusCode and type the message's delivery report will carry."""
        if outcome is None:
            return StatusCode.DELIVERED, self.type
        if outcome.stage is Stage.REPORT:
            return outcome.code, self.type
        if outcome.fallback and self.type == MessageType.ATA:
            if self.kakao and self.kakao.get("disableSms"):
                return StatusCode.NOT_KAKAO_USER, self.type
            fallback_type = MessageType.SMS if self.text_bytes <= SMS_MAX_BYTES else MessageType.LMS
            return StatusCode.DELIVERED, fallback_type
        return StatusCode.DELIVERED, self.type


def _detect_type(text_bytes: int, subject: str | None, kakao: dict | None, image_id: str | None) -> str:
    if kakao and (kakao.get("pfId") or kakao.get("templateId")):
        return MessageType.ATA
    if image_id:
        return MessageType.MMS
    if subject or text_bytes > SMS_MAX_BYTES:
        return MessageType.LMS
    return MessageType.SMS


def _register(raw: dict[str, Any], to: str | None, group_id: str, rules: RegistrationRules, now: str) -> Message:
    submitted = _Submission.read(raw, to)
    outcome = rules.outcomes.get(digits_only(to)) if to else None
    code = submitted.registration_code(rules)
    if code == StatusCode.REGISTERED and outcome and outcome.stage is Stage.REGISTER:
        code = outcome.code
    report_code, report_type = submitted.planned_report(outcome)
    return Message(
        message_id=new_message_id(),
        group_id=group_id,
        to=to,
        sender=submitted.sender,
        type=submitted.type,
        text=submitted.text,
        subject=submitted.subject,
        country=submitted.country,
        image_id=submitted.image_id,
        custom_fields=submitted.custom_fields if submitted.custom_fields_ok else {},
        kakao_options=submitted.kakao,
        registration_code=code,
        report_code=report_code,
        report_type=report_type,
        date_created=now,
    )
