"""Every reason the API refuses a request: a machine-readable code, an HTTP status, and a
message for staff in Korean and English that says how to fix it.

Services raise Refusal(code, **values); messaging/api/errors.py renders it as
{"code": …, "detail": "<ko> / <en>", "messages": {"ko": …, "en": …}, …extra}.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from messaging.failures import FailureClass


class RefusalCode(StrEnum):
    # The request itself.
    INVALID_REQUEST = "invalid_request"
    # A list or object over its size limit, refused before its items are looked at.
    TOO_MANY_ITEMS = "too_many_items"
    # The whole body over DATA_UPLOAD_MAX_MEMORY_SIZE.
    REQUEST_TOO_LARGE = "request_too_large"
    BODY_EMPTY = "body_empty"
    BODY_TOO_LONG = "body_too_long"
    SUBJECT_TOO_LONG = "subject_too_long"
    UNSUPPORTED_CHARACTERS = "unsupported_characters"
    UNKNOWN_VARIABLE = "unknown_variable"
    UNUSED_VARIABLE = "unused_variable"
    NO_STUDENTS = "no_students"
    STUDENT_NOT_FOUND = "student_not_found"
    CLASS_NOT_FOUND = "class_not_found"
    TEMPLATE_REQUIRED = "template_required"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    # A scheduled send (send_at).
    SEND_AT_IN_PAST = "send_at_in_past"
    SEND_AT_TOO_FAR = "send_at_too_far"
    # The academy's state.
    TENANT_REQUIRED = "tenant_required"
    TENANT_NOT_FOUND = "tenant_not_found"
    SENDER_MISSING = "sender_missing"
    SENDER_UNREGISTERED = "sender_unregistered"
    MESSAGING_INACTIVE = "messaging_inactive"
    TEMPLATE_NOT_APPROVED = "template_not_approved"
    KAKAO_CHANNEL_MISSING = "kakao_channel_missing"
    INSUFFICIENT_CREDIT = "insufficient_credit"
    PRICE_NOT_CONFIGURED = "price_not_configured"
    NO_RECIPIENTS = "no_recipients"
    # Korean sending rules for advertising.
    AD_LABEL_MISSING = "ad_label_missing"
    AD_SENDER_NAME_MISSING = "ad_sender_name_missing"
    AD_OPT_OUT_MISSING = "ad_opt_out_missing"
    AD_OPT_OUT_NUMBER_MISSING = "ad_opt_out_number_missing"
    AD_VIA_ALIMTALK = "ad_via_alimtalk"
    SEND_AT_IN_NIGHT_WINDOW = "send_at_in_night_window"
    # Everything else the API answers with.
    NOT_FOUND = "not_found"
    NOT_AUTHENTICATED = "not_authenticated"
    PERMISSION_DENIED = "permission_denied"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    THROTTLED = "throttled"
    DAILY_MESSAGE_LIMIT = "daily_message_limit"


# The academy's state, as messaging/eligibility.py answers it → what the API says.
ACADEMY_REFUSALS: dict[FailureClass, RefusalCode] = {
    FailureClass.MESSAGING_INACTIVE: RefusalCode.MESSAGING_INACTIVE,
    FailureClass.SENDER_MISSING: RefusalCode.SENDER_MISSING,
    FailureClass.SENDER_UNREGISTERED: RefusalCode.SENDER_UNREGISTERED,
}


@dataclass(frozen=True)
class _Text:
    status: int
    ko: str
    en: str


_TEXTS: dict[RefusalCode, _Text] = {
    RefusalCode.INVALID_REQUEST: _Text(400, "요청 형식이 올바르지 않습니다: {errors}", "The request is not valid: {errors}"),
    RefusalCode.TOO_MANY_ITEMS: _Text(
        400, "{field} 항목이 {count}개로 최대 {limit}개를 넘습니다. 나누어 보내 주세요.",
        "{field} has {count} items, over the limit of {limit}; split the request.",
    ),
    RefusalCode.REQUEST_TOO_LARGE: _Text(
        413, "요청 본문이 너무 큽니다 (최대 {limit}바이트).", "The request body is too large (at most {limit} bytes).",
    ),
    RefusalCode.BODY_EMPTY: _Text(400, "메시지 내용을 입력해 주세요.", "The message body is empty; write the text to send."),
    RefusalCode.BODY_TOO_LONG: _Text(
        400, "메시지가 {length}바이트로 최대 {limit}바이트를 넘습니다. 내용을 줄여 주세요.",
        "The message is {length} bytes, over the {limit}-byte limit; shorten it.",
    ),
    RefusalCode.SUBJECT_TOO_LONG: _Text(
        400, "제목이 {length}바이트로 최대 {limit}바이트를 넘습니다.", "The subject is {length} bytes, over the {limit}-byte limit.",
    ),
    RefusalCode.UNSUPPORTED_CHARACTERS: _Text(
        400, "문자로 보낼 수 없는 글자가 있습니다: {characters} (이모지 등). 해당 글자를 지워 주세요.",
        "These characters cannot be sent by SMS/LMS (outside EUC-KR, e.g. emoji): {characters}. Remove them.",
    ),
    RefusalCode.UNKNOWN_VARIABLE: _Text(
        400, "알 수 없는 변수 {variables}가 있습니다. 사용 가능한 변수: #{{이름}} 또는 alimtalk_replacements의 키.",
        "Unknown variables {variables}; use #{{이름}} or a key of alimtalk_replacements.",
    ),
    RefusalCode.UNUSED_VARIABLE: _Text(
        400, "템플릿에 없는 변수 {variables}가 alimtalk_replacements에 있습니다. 해당 키를 지워 주세요.",
        "alimtalk_replacements has keys the text does not use: {variables}; remove them.",
    ),
    RefusalCode.NO_STUDENTS: _Text(
        400, "받는 학생이나 학생이 있는 반을 한 명(한 반) 이상 선택해 주세요.",
        "Choose at least one student, or a class that has students.",
    ),
    RefusalCode.STUDENT_NOT_FOUND: _Text(
        404, "학생을 찾을 수 없습니다: {student_ids}", "These students were not found: {student_ids}",
    ),
    RefusalCode.CLASS_NOT_FOUND: _Text(
        404, "반을 찾을 수 없습니다: {class_ids}", "These classes were not found: {class_ids}",
    ),
    RefusalCode.TEMPLATE_REQUIRED: _Text(
        400, "알림톡은 template_id가 필요합니다.", "AlimTalk needs a template_id.",
    ),
    RefusalCode.IDEMPOTENCY_KEY_REUSED: _Text(
        422, "같은 Idempotency-Key로 다른 내용의 요청이 이미 있습니다. 새 키를 사용해 주세요.",
        "This Idempotency-Key was used for a different request; use a new key.",
    ),
    RefusalCode.SEND_AT_IN_PAST: _Text(
        400, "예약 시각({send_at})이 이미 지났습니다. 지금 보내려면 send_at을 비워 두세요.",
        "The scheduled time ({send_at}) has passed; leave send_at out to send now.",
    ),
    RefusalCode.SEND_AT_TOO_FAR: _Text(
        400, "예약 발송은 {days}일 이내로만 할 수 있습니다.", "A send can be scheduled at most {days} days ahead.",
    ),
    RefusalCode.TENANT_REQUIRED: _Text(
        400, "여러 학원에 소속되어 있습니다. X-Tenant 헤더에 학원을 지정해 주세요.",
        "You belong to several academies; name one in the X-Tenant header.",
    ),
    RefusalCode.TENANT_NOT_FOUND: _Text(404, "학원을 찾을 수 없습니다.", "Academy not found."),
    RefusalCode.SENDER_MISSING: _Text(
        422, "발신번호가 등록되지 않았습니다. 설정 > 내 정보에서 발신번호를 등록·인증한 뒤 저장해 주세요.",
        "No sender number is set. Register and verify one under Settings > My info.",
    ),
    RefusalCode.SENDER_UNREGISTERED: _Text(
        422, "솔라피에 등록되지 않은 발신번호입니다({sender}). 발신번호를 다시 등록·인증해 주세요.",
        "Solapi rejected the sender number {sender} as unregistered. Register it again and verify it.",
    ),
    RefusalCode.MESSAGING_INACTIVE: _Text(
        422, "이 학원은 메시지 발송이 꺼져 있습니다. 관리자에게 문의해 주세요.",
        "Messaging is switched off for this academy; ask an administrator.",
    ),
    RefusalCode.TEMPLATE_NOT_APPROVED: _Text(
        422, "알림톡 템플릿이 없거나 승인되지 않았습니다. 승인된 템플릿을 선택해 주세요.",
        "The AlimTalk template is missing or not approved; choose an approved template.",
    ),
    RefusalCode.KAKAO_CHANNEL_MISSING: _Text(
        422, "카카오 채널(pfId)이 설정되지 않았습니다.", "No Kakao channel (pfId) is configured for this academy.",
    ),
    RefusalCode.INSUFFICIENT_CREDIT: _Text(
        402, "충전금이 부족합니다. 예상 비용 {estimated_cost}원, 사용 가능 {available}원.",
        "Not enough credit: this send costs {estimated_cost} KRW and {available} KRW is available.",
    ),
    RefusalCode.PRICE_NOT_CONFIGURED: _Text(
        422, "{message_type} 단가가 설정되지 않아 보낼 수 없습니다. 관리자에게 문의해 주세요.",
        "No price is configured for {message_type}; ask an administrator.",
    ),
    RefusalCode.NO_RECIPIENTS: _Text(
        422, "보낼 수 있는 수신자가 없습니다. skipped 목록의 사유를 확인해 주세요.",
        "Every recipient was skipped; see the reasons in `skipped`.",
    ),
    RefusalCode.AD_LABEL_MISSING: _Text(
        400, "광고 메시지는 정확히 \"(광고)\"로 시작해야 합니다.", "An ad must start with exactly \"(광고)\".",
    ),
    RefusalCode.AD_SENDER_NAME_MISSING: _Text(
        400, "광고 메시지에 학원 이름 \"{name}\"을(를) 넣어 주세요.", "An ad must carry the academy's name, \"{name}\".",
    ),
    RefusalCode.AD_OPT_OUT_MISSING: _Text(
        400, "광고 메시지는 \"무료수신거부 {number}\" 문구로 끝나야 합니다.",
        "An ad must end with the free opt-out line \"무료수신거부 {number}\".",
    ),
    RefusalCode.AD_OPT_OUT_NUMBER_MISSING: _Text(
        422, "광고를 보내려면 080 수신거부 번호를 학원 설정에 등록해 주세요.",
        "Register the academy's free 080 opt-out number before sending ads.",
    ),
    RefusalCode.AD_VIA_ALIMTALK: _Text(
        400, "알림톡으로는 광고를 보낼 수 없습니다. 문자(SMS/LMS)로 보내 주세요.",
        "Ads cannot be sent by AlimTalk; send them as SMS/LMS.",
    ),
    RefusalCode.SEND_AT_IN_NIGHT_WINDOW: _Text(
        400, "광고는 야간(21:00~08:00)에 예약할 수 없습니다({send_at}). 08:00~21:00 사이로 예약해 주세요.",
        "Ads cannot be scheduled between 21:00 and 08:00 KST ({send_at}); choose a time between 08:00 and 21:00.",
    ),
    RefusalCode.NOT_FOUND: _Text(404, "찾을 수 없습니다.", "Not found."),
    RefusalCode.NOT_AUTHENTICATED: _Text(401, "로그인이 필요합니다.", "Authentication required."),
    RefusalCode.PERMISSION_DENIED: _Text(403, "권한이 없습니다.", "You may not do this."),
    RefusalCode.METHOD_NOT_ALLOWED: _Text(405, "허용되지 않는 요청 방식입니다.", "Method not allowed."),
    RefusalCode.THROTTLED: _Text(429, "요청이 너무 많습니다. 잠시 후 다시 시도해 주세요.", "Too many requests; try again later."),
    RefusalCode.DAILY_MESSAGE_LIMIT: _Text(
        429, "오늘 보낼 수 있는 메시지 수({limit}건)를 넘습니다: 오늘 {sent}건, 이번 요청 {requested}건. 내일 다시 보내 주세요.",
        "This send would pass the academy's daily limit of {limit} messages ({sent} today, {requested} in this "
        "request); send the rest tomorrow.",
    ),
}


@dataclass(frozen=True)
class Bilingual:
    """A value that reads differently in each language (e.g. field errors)."""

    ko: str
    en: str


class Refusal(Exception):
    """A request the service will not carry out, with everything the API needs to say why."""

    def __init__(self, code: RefusalCode, *, extra: dict[str, Any] | None = None, **values: Any):
        text = _TEXTS[code]
        self.code = code
        self.status = text.status
        self.ko = text.ko.format(**{k: v.ko if isinstance(v, Bilingual) else v for k, v in values.items()})
        self.en = text.en.format(**{k: v.en if isinstance(v, Bilingual) else v for k, v in values.items()})
        self.extra = extra or {}
        super().__init__(f"{code}: {self.en}")

    def as_body(self) -> dict[str, Any]:
        return {"code": str(self.code), "detail": f"{self.ko} / {self.en}", "messages": {"ko": self.ko, "en": self.en},
                **self.extra}
