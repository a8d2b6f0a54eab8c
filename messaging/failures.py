"""Why a message did not go out, or went out and failed: the one vocabulary.

The Solapi adapter maps Solapi's codes onto these classes (messaging/solapi/outcomes.py),
the pipeline adds its own (credit, tenant state), and the API, the admin and the
MessageOutcome rows all show them as they are.
"""

from django.db import models


class FailureClass(models.TextChoices):
    # The academy's configuration.
    SENDER_UNREGISTERED = "sender_unregistered", "발신번호 미등록 (sender number not registered)"
    SENDER_MISSING = "sender_missing", "발신번호 없음 (no sender number)"
    MESSAGING_INACTIVE = "messaging_inactive", "메시지 발송 비활성 (messaging disabled)"
    KAKAO_CONFIG = "kakao_config", "카카오 채널/템플릿 설정 오류 (Kakao channel or template)"
    INSUFFICIENT_CREDIT = "insufficient_credit", "충전금 부족 (not enough credit)"
    # The recipient.
    RECIPIENT_INVALID = "recipient_invalid", "수신번호 오류 (invalid recipient number)"
    RECIPIENT_OPTED_OUT = "recipient_opted_out", "수신거부 (recipient opted out)"
    RECIPIENT_BLOCKED = "recipient_blocked", "수신 차단 (recipient blocked or spam-filtered)"
    # The text.
    CONTENT = "content", "내용 오류 (content rejected)"
    # Solapi or the carrier, for a while.
    TRANSIENT = "transient", "일시적 오류 (temporary carrier or Solapi error)"
    TRANSIENT_EXHAUSTED = "transient_exhausted", "재시도 초과 (retries exhausted)"
    # The platform: our Solapi key, clock or balance. Never the academy's fault.
    AUTH_FAILED = "auth_failed", "솔라피 인증 실패 (Solapi authentication failed)"
    CLOCK_SKEW = "clock_skew", "서버 시간 오류 (server clock skew)"
    PLATFORM_BALANCE = "platform_balance", "플랫폼 잔액 부족 (platform Solapi balance)"
    PLATFORM = "platform", "플랫폼 오류 (platform account blocked)"
    # Solapi refused the request itself (a 4xx that is none of the above).
    REJECTED = "rejected", "요청 거부 (request rejected by Solapi)"
    # Accepted, but no delivery report arrived in time.
    REPORT_TIMEOUT = "report_timeout", "결과 미수신 (no delivery report)"
    # A code we have never seen; treated as permanent.
    UNKNOWN = "unknown", "알 수 없는 오류 (unknown Solapi code)"
    # A bug or crash on our side, caught by the rollback.
    INTERNAL = "internal", "내부 오류 (internal error)"
    # Staff stopped the send before this message went to Solapi; its credit was released.
    CANCELLED = "cancelled", "발송 취소 (cancelled by staff before sending)"


# Classes that say something about the number itself: the next send skips it.
SUPPRESSING_CLASSES = frozenset(
    {FailureClass.RECIPIENT_INVALID, FailureClass.RECIPIENT_OPTED_OUT, FailureClass.RECIPIENT_BLOCKED}
)

# Classes that pause all sending (circuit breaker) instead of failing messages.
PLATFORM_PAUSE_CLASSES = frozenset(
    {FailureClass.AUTH_FAILED, FailureClass.CLOCK_SKEW, FailureClass.PLATFORM_BALANCE, FailureClass.PLATFORM}
)
