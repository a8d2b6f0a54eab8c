"""What went wrong talking to Solapi, as types the pipeline can act on.

Three families decide the retry policy (messaging/pipeline/policies.py):
- SolapiPlatformError: our key, clock or Solapi balance. Pause everyone; charge no one.
- SolapiTransientError: connection, timeout, 429, 5xx. Retry with backoff.
- SolapiRejectedError: any other refusal of the request. Do not retry.
Each error keeps the HTTP status and Solapi's errorCode, and says whether the request
may have reached Solapi (`ambiguous`) or provably did not.
"""

import email.utils
import time
from typing import Any

from messaging.failures import FailureClass


class SolapiError(Exception):
    failure_class = FailureClass.REJECTED

    def __init__(self, detail: str, *, http_status: int | None = None, error_code: str = "",
                 ambiguous: bool = False, retry_after: float | None = None):
        super().__init__(detail)
        self.detail = detail[:300]
        self.http_status = http_status
        self.error_code = error_code
        self.ambiguous = ambiguous
        # Seconds Solapi asked us to wait (its Retry-After header), if it said.
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, Any]:
        """Plain data for logs, attempts and task results (no exception objects)."""
        return {
            "error": type(self).__name__,
            "failure_class": str(self.failure_class),
            "http_status": self.http_status,
            "error_code": self.error_code,
            "ambiguous": self.ambiguous,
            "retry_after": self.retry_after,
            "detail": self.detail,
        }

    def __reduce__(self):
        # Celery pickles nothing (JSON), but billiard moves exceptions between processes.
        return (_rebuild, (type(self), self.detail, self.http_status, self.error_code, self.ambiguous,
                           self.retry_after))


def _rebuild(cls, detail, http_status, error_code, ambiguous, retry_after=None):
    return cls(detail, http_status=http_status, error_code=error_code, ambiguous=ambiguous, retry_after=retry_after)


class SolapiPlatformError(SolapiError):
    """Every send would fail the same way until an operator acts."""


class SolapiAuthError(SolapiPlatformError):
    failure_class = FailureClass.AUTH_FAILED


class SolapiClockSkewError(SolapiPlatformError):
    failure_class = FailureClass.CLOCK_SKEW


class SolapiPlatformBalanceError(SolapiPlatformError):
    failure_class = FailureClass.PLATFORM_BALANCE


class SolapiAccountBlockedError(SolapiPlatformError):
    failure_class = FailureClass.PLATFORM


class SolapiTransientError(SolapiError):
    failure_class = FailureClass.TRANSIENT


class SolapiRateLimited(SolapiTransientError):
    """429, or our own account-wide request rate (messaging/solapi/rate_limit.py) refusing to
    queue a call for longer: nothing was processed. Its own policy, not the transient budget."""


class SolapiServerError(SolapiTransientError):
    pass


class SolapiTimeout(SolapiTransientError):
    pass


class SolapiConnectionError(SolapiTransientError):
    pass


class SolapiBadResponse(SolapiTransientError):
    """A 2xx whose body is not what Solapi documents. The request was probably
    processed, so this is ambiguous and resolved like a timeout."""


class SolapiRejectedError(SolapiError):
    failure_class = FailureClass.REJECTED


# errorCode → error type. Solapi answers all four auth problems with 403 and tells them
# apart only by errorCode; a gateway in front of it may say 401 (docs/solapi.md, "HTTP errors").
ERROR_CODES: dict[str, type[SolapiError]] = {
    "InvalidApiKey": SolapiAuthError,
    "InvalidAPIKey": SolapiAuthError,
    "SignatureDoesNotMatch": SolapiAuthError,
    "Unauthorized": SolapiAuthError,
    "Forbidden": SolapiAuthError,
    "RequestTimeTooSkewed": SolapiClockSkewError,
    "NotEnoughBalance": SolapiPlatformBalanceError,
    # A reused signature: every attempt is signed afresh, so a retry cures it.
    "DuplicatedSignature": SolapiTransientError,
    "TooManyRequests": SolapiRateLimited,
}

# HTTP status → error type, for bodies without a known errorCode.
HTTP_STATUSES: dict[int, type[SolapiError]] = {
    401: SolapiAuthError,
    402: SolapiPlatformBalanceError,
    429: SolapiRateLimited,
}

# Failure class of a platform problem → its error type (a per-message status code can
# say the account cannot send: messaging/solapi/outcomes.py).
PLATFORM_ERRORS: dict[FailureClass, type[SolapiPlatformError]] = {
    error_type.failure_class: error_type
    for error_type in (SolapiAuthError, SolapiClockSkewError, SolapiPlatformBalanceError, SolapiAccountBlockedError)
}

# A repeated send of a group answers 409 with one of these: the group already went out.
ALREADY_SENT_CODES = frozenset({"AlreadySent", "GroupInProcessing"})


def error_from_response(status: int, body: dict[str, Any] | None, text: str = "",
                        retry_after: float | None = None) -> SolapiError:
    """Classify a non-2xx answer. A 5xx may have been processed before it failed."""
    body = body or {}
    code = str(body.get("errorCode") or "")
    detail = str(body.get("errorMessage") or text or f"HTTP {status}")
    if status >= 500:
        return SolapiServerError(detail, http_status=status, error_code=code, ambiguous=True, retry_after=retry_after)
    error_type = ERROR_CODES.get(code) or HTTP_STATUSES.get(status) or SolapiRejectedError
    return error_type(detail, http_status=status, error_code=code, retry_after=retry_after)


def platform_error(failure_class: FailureClass, detail: str, *, error_code: str = "") -> SolapiPlatformError:
    """The error for a platform failure class that Solapi reported per message."""
    return PLATFORM_ERRORS.get(failure_class, SolapiPlatformError)(detail, error_code=error_code)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: a number of seconds, or an HTTP date (RFC 9110 §10.2.3).
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
