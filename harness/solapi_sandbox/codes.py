"""Solapi's vocabulary as the sandbox speaks it: operations, HTTP error codes, per-message
status codes, group statuses, limits and prices. Every code the sandbox emits is defined here.

Sources: docs/sandbox.md, and docs/solapi.md ("HTTP errors", "Status codes").
"""

from datetime import timedelta
from enum import StrEnum
from http import HTTPStatus


class Operation(StrEnum):
    """The Solapi calls the sandbox serves; fault rules and the request log are keyed by these."""

    SEND_MANY = "send_many"
    CREATE_GROUP = "create_group"
    ADD_MESSAGES = "add_messages"
    SEND_GROUP = "send_group"
    GET_GROUP = "get_group"
    GET_GROUP_MESSAGES = "get_group_messages"
    BALANCE = "balance"


# Fault rules and latency settings may target every operation at once.
ANY_OPERATION = "*"


class ErrorCode(StrEnum):
    """`errorCode` of a non-2xx reply."""

    INVALID_API_KEY = "InvalidApiKey"
    SIGNATURE_DOES_NOT_MATCH = "SignatureDoesNotMatch"
    REQUEST_TIME_TOO_SKEWED = "RequestTimeTooSkewed"
    DUPLICATED_SIGNATURE = "DuplicatedSignature"
    VALIDATION_ERROR = "ValidationError"
    NOT_ENOUGH_BALANCE = "NotEnoughBalance"
    RESOURCE_NOT_FOUND = "ResourceNotFound"
    INVALID_GROUP_STATUS = "InvalidGroupStatus"
    ALREADY_SENT = "AlreadySent"
    GROUP_IN_PROCESSING = "GroupInProcessing"
    RECIPIENTS_TOO_MANY = "RecipientsTooMany"
    TOO_MANY_REQUESTS = "TooManyRequests"
    INTERNAL_ERROR = "InternalServerError"


ERROR_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.INVALID_API_KEY: "유효하지 않은 API Key 입니다.",
    ErrorCode.SIGNATURE_DOES_NOT_MATCH: "생성한 Signature가 일치하지 않습니다.",
    ErrorCode.REQUEST_TIME_TOO_SKEWED: "요청 시간이 서버 시간과 15분 이상 차이가 납니다.",
    ErrorCode.DUPLICATED_SIGNATURE: "15분 안에 같은 Signature로 다시 요청할 수 없습니다.",
    ErrorCode.VALIDATION_ERROR: "요청 형식이 올바르지 않습니다.",
    ErrorCode.NOT_ENOUGH_BALANCE: "보유 잔액이 부족합니다.",
    ErrorCode.RESOURCE_NOT_FOUND: "요청한 리소스를 찾을 수 없습니다.",
    ErrorCode.INVALID_GROUP_STATUS: "이미 발송된 그룹에는 메시지를 추가할 수 없습니다.",
    ErrorCode.ALREADY_SENT: "이미 발송된 그룹입니다.",
    ErrorCode.GROUP_IN_PROCESSING: "그룹을 발송 처리하는 중입니다.",
    ErrorCode.RECIPIENTS_TOO_MANY: "한 번에 추가할 수 있는 수신번호는 최대 10000건 입니다.",
    ErrorCode.TOO_MANY_REQUESTS: "요청이 너무 많습니다. 잠시 후 다시 시도해 주세요.",
    ErrorCode.INTERNAL_ERROR: "Solapi sandbox internal error.",
}

AUTH_ERROR_CODES = frozenset(
    {
        ErrorCode.INVALID_API_KEY,
        ErrorCode.SIGNATURE_DOES_NOT_MATCH,
        ErrorCode.REQUEST_TIME_TOO_SKEWED,
        ErrorCode.DUPLICATED_SIGNATURE,
    }
)

# Solapi answers auth failures with 403; a gateway in front of it may say 401 instead.
AUTH_STATUSES = frozenset({HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN})


class StatusCode(StrEnum):
    """Per-message `statusCode`: 1xxx registration errors, 2000 registered, 3000 with the carrier,
    4000 delivered, other 3xxx carrier or Kakao failures."""

    MISSING_REQUIRED_FIELD = "1010"
    INVALID_TYPE = "1025"
    OUTSIDE_EUC_KR = "1029"
    TOO_LONG = "1031"
    INVALID_CUSTOM_FIELDS = "1032"
    INVALID_PF_ID = "1041"
    INVALID_TEMPLATE_ID = "1042"
    SENDER_NOT_REGISTERED = "1062"
    REGISTERED = "2000"
    SENT = "3000"
    NOT_KAKAO_USER = "3104"
    DELIVERED = "4000"


STATUS_MESSAGES: dict[str, str] = {
    "1010": "필수 입력 값 미입력",
    "1025": "메시지 타입 오류",
    "1029": "EUC-KR 범위 밖의 문자 포함",
    "1030": "잔액 부족",
    "1031": "메시지 길이 초과",
    "1032": "customFields 형식 오류",
    "1041": "유효하지 않은 카카오 채널(pfId)",
    "1042": "유효하지 않은 템플릿 ID",
    "1060": "차단된 수신번호",
    "1061": "080 수신거부",
    "1062": "발신번호 미등록",
    "2000": "정상 접수(이통사로 접수 예정)",
    "3000": "이통사로 접수",
    "3010": "수신번호 형식 오류",
    "3032": "미가입자",
    "3040": "전송시간 초과",
    "3041": "단말기 메시지 수신 중",
    "3042": "음영 지역",
    "3043": "단말기 전원 꺼짐",
    "3044": "단말기 메시지 저장 개수 초과",
    "3045": "단말기 일시 정지",
    "3046": "기타 단말기 문제",
    "3047": "착신 거절",
    "3050": "SMS 수신 불가 단말기",
    "3104": "카카오톡 미사용자",
    "3107": "알림톡 수신 차단 또는 72시간 이내 미사용",
    "4000": "발송 처리 완료",
}


def status_message(code: str) -> str:
    """The Korean `statusMessage` for a code; rules may use codes this table does not know."""
    return STATUS_MESSAGES.get(code, f"상태 코드 {code}")


class GroupStatus(StrEnum):
    PENDING = "PENDING"
    SENDING = "SENDING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


class MessageType(StrEnum):
    """The types the sandbox treats specially; any other value of the SDK's MessageType is accepted as is."""

    SMS = "SMS"
    LMS = "LMS"
    MMS = "MMS"
    ATA = "ATA"


# Every value of solapi.model.message_type.MessageType (5.0.3). The sandbox must not import the SDK.
KNOWN_MESSAGE_TYPES = frozenset(
    {
        "SMS", "LMS", "MMS", "ATA", "CTA", "CTI", "NSA", "RCS_SMS", "RCS_LMS", "RCS_MMS", "RCS_TPL",
        "RCS_ITPL", "RCS_LTPL", "FAX", "VOICE", "BMS_TEXT", "BMS_IMAGE", "BMS_WIDE", "BMS_WIDE_ITEM_LIST",
        "BMS_CAROUSEL_FEED", "BMS_PREMIUM_VIDEO", "BMS_COMMERCE", "BMS_CAROUSEL_COMMERCE", "BMS_FREE",
    }
)  # fmt: skip
TEXT_MESSAGE_TYPES = frozenset({MessageType.SMS, MessageType.LMS, MessageType.MMS})

SMS_MAX_BYTES = 90
LMS_MAX_BYTES = 2000
ATA_MAX_CHARS = 1000
CUSTOM_FIELD_KEY_MAX_CHARS = 30
CUSTOM_FIELD_VALUE_MAX_CHARS = 100
MAX_MESSAGES_PER_REQUEST = 10_000
# Solapi's list endpoints answer 20 items without `limit` and refuse more than 500 per page.
DEFAULT_PAGE_LIMIT = 20
MAX_PAGE_LIMIT = 500

# The signature's date must be this close to server time, and a signature cannot repeat within it.
AUTH_WINDOW = timedelta(minutes=15)

DEFAULT_COUNTRY = "82"
ACCOUNT_ID = "SANDBOX0000001"
API_VERSION = "4"
NETWORK_CODE = "SKT"
# Sandbox prices in KRW per message, by lower-case type: the prices the project's academies are
# given (harness/academies.py, which the sandbox does not import), so their charges match its bill.
PRICES: dict[str, float] = {"sms": 13.0, "lms": 29.0, "mms": 60.0, "ata": 9.0}


class FallbackSignal(StrEnum):
    """How a report tells that an AlimTalk fell back to SMS/LMS (Solapi has used each way)."""

    TYPE = "type"  # the report's `type` is the text type that was delivered
    REPLACEMENT = "replacement"  # `type` stays ATA, with `replacement: true`
    GROUP_COUNT = "group_count"  # nothing per message; only the group's count.sentReplacement
DEFAULT_PLATFORM_BALANCE = 1_000_000.0
