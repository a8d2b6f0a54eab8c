"""Verification of Solapi's `Authorization: HMAC-SHA256 ApiKey=…, Date=…, salt=…, signature=…` header."""

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import NoReturn

from .codes import AUTH_STATUSES, AUTH_WINDOW, ErrorCode
from .errors import SolapiError

SCHEME = "HMAC-SHA256"
_REQUIRED_FIELDS = ("apikey", "date", "salt", "signature")
# Enough for thousands of requests a second over the whole window; beyond it the oldest
# signatures are forgotten early rather than letting memory grow.
MAX_REMEMBERED_SIGNATURES = 500_000


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_secret: str
    auth_status: int = HTTPStatus.FORBIDDEN

    def __post_init__(self) -> None:
        if self.auth_status not in AUTH_STATUSES:
            raise ValueError(f"auth_status must be 401 or 403, not {self.auth_status}")


def parse_authorization(header: str | None) -> dict[str, str] | None:
    """The header's fields keyed in lower case (the docs spell `apiKey`, the SDK `ApiKey`), or None."""
    if not header:
        return None
    scheme, _, params = header.strip().partition(" ")
    if scheme.upper() != SCHEME:
        return None
    fields: dict[str, str] = {}
    for part in params.split(","):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    if not all(fields.get(name) for name in _REQUIRED_FIELDS):
        return None
    return fields


def expected_signature(api_secret: str, date: str, salt: str) -> str:
    return hmac.new(api_secret.encode(), (date + salt).encode(), hashlib.sha256).hexdigest()


class RequestAuthenticator:
    """Checks each request's header against the current credentials and remembers recent signatures."""

    def __init__(self, credentials: Credentials) -> None:
        self._lock = threading.Lock()
        self._credentials = credentials
        # signature -> monotonic expiry; insertion order is expiry order, so purging pops from the front.
        self._seen: OrderedDict[str, float] = OrderedDict()
        # How far the sandbox's clock is from the real one: a way to make every caller's
        # signature look skewed (RequestTimeTooSkewed) without touching the caller's clock.
        self.clock_offset = timedelta(0)

    @property
    def credentials(self) -> Credentials:
        return self._credentials

    def set_credentials(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def forget_signatures(self) -> None:
        with self._lock:
            self._seen.clear()

    def verify(self, header: str | None) -> None:
        """Return if the request may proceed; raise SolapiError with the auth status otherwise."""
        credentials = self._credentials
        fields = parse_authorization(header)
        if fields is None or fields["apikey"] != credentials.api_key:
            self._reject(ErrorCode.INVALID_API_KEY)
        signed_at = _parse_date(fields["date"])
        if signed_at is None:
            self._reject(ErrorCode.INVALID_API_KEY)
        signature = expected_signature(credentials.api_secret, fields["date"], fields["salt"])
        if not hmac.compare_digest(signature, fields["signature"].lower()):
            self._reject(ErrorCode.SIGNATURE_DOES_NOT_MATCH)
        if abs(datetime.now(UTC) + self.clock_offset - signed_at) > AUTH_WINDOW:
            self._reject(ErrorCode.REQUEST_TIME_TOO_SKEWED)
        if not self._remember(signature):
            self._reject(ErrorCode.DUPLICATED_SIGNATURE)

    def _remember(self, signature: str) -> bool:
        """False if the signature was already used within the window."""
        now = time.monotonic()
        with self._lock:
            while self._seen:
                oldest, expiry = next(iter(self._seen.items()))
                if expiry > now and len(self._seen) < MAX_REMEMBERED_SIGNATURES:
                    break
                del self._seen[oldest]
            if signature in self._seen:
                return False
            self._seen[signature] = now + AUTH_WINDOW.total_seconds()
            return True

    def _reject(self, code: ErrorCode) -> NoReturn:
        raise SolapiError(self._credentials.auth_status, code)


def _parse_date(date: str) -> datetime | None:
    """The signing time; None unless it is ISO 8601 with an offset, as the SDK and the docs send it."""
    try:
        signed_at = datetime.fromisoformat(date)
    except ValueError:
        return None
    return signed_at if signed_at.tzinfo is not None else None
