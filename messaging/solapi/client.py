"""The Solapi boundary: the SDK's models and signing over one pooled HTTP client.

The solapi SDK (5.0.3) opens a new connection for every call with a fixed 5 s
timeout, drops the HTTP status from errors and lacks the group endpoints (docs/solapi.md,
"The SDK, and why the adapter sends requests itself"). We keep its request/response
models and its HMAC signing and send them ourselves, so every call reuses a connection,
has explicit timeouts, and fails with a typed error (messaging/solapi/errors.py).
Results are plain dataclasses: nothing pydantic leaves this module.
"""

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import httpx
from django.conf import settings
from pydantic import ValidationError
from solapi.lib.authenticator import Authenticator
from solapi.model import KakaoOption, RequestMessage
from solapi.model.message_type import MessageType
from solapi.model.response.common_response import CommonCashResponse, GroupMessageResponse

from messaging import metrics
from messaging.failures import PLATFORM_PAUSE_CLASSES
from messaging.solapi.errors import (
    ALREADY_SENT_CODES,
    SolapiBadResponse,
    SolapiConnectionError,
    SolapiError,
    SolapiTimeout,
    error_from_response,
    parse_retry_after,
    platform_error,
)
from messaging.solapi.outcomes import StatusOutcome, classify_status
from messaging.solapi.schemas import GroupMessagesPage

# Solapi accepts at most 10,000 messages in one request (RecipientsTooMany above it).
MAX_MESSAGES_PER_REQUEST = 10_000
# Solapi pages its lists: 20 items without `limit`, at most 500 with it; `startKey` is the
# previous page's `nextKey`, and the last page has none. We ask for the most per page.
GROUP_MESSAGES_PAGE_LIMIT = 500
# A group holds at most 1,000,000 messages: more pages than that means a cursor that loops.
MAX_GROUP_MESSAGE_PAGES = 1_000_000 // GROUP_MESSAGES_PAGE_LIMIT + 1
# The key under customFields that carries our Message id, echoed back in every list and report.
MESSAGE_ID_FIELD = "message_id"


# What the SDK's model accepts as a message's `type`.
_SOLAPI_MESSAGE_TYPES = frozenset(member.value for member in MessageType)


@dataclass(frozen=True)
class OutgoingMessage:
    """One message as the pipeline hands it over: plain data, our id attached."""

    message_id: int
    to: str
    sender: str
    text: str
    message_type: str
    subject: str = ""
    pf_id: str = ""
    template_id: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    # AlimTalk only: False lets Solapi fall back to SMS/LMS when Kakao cannot deliver.
    disable_sms: bool = True

    def to_request(self) -> RequestMessage:
        return RequestMessage(
            from_=self.sender, to=self.to, text=self.text, type=self.message_type,
            subject=self.subject or None, kakao_options=self._kakao(),
            custom_fields={MESSAGE_ID_FIELD: str(self.message_id)},
        )

    def to_payload(self) -> dict[str, Any]:
        """The JSON add_messages sends for this message: what the SDK's model dumps
        (`to_request().model_dump(exclude_none=True, by_alias=True)`; tests/solapi/test_client.py
        holds them equal), written out as a dict. Building and dumping the model per message
        was a tenth of a chunk's CPU in the worker. The Kakao options, rare and rule-laden
        (variable names wrapped in #{…}), still go through the SDK's model. A type the SDK
        does not know raises ValueError, as its model's validation did: a defect in our row,
        never sent."""
        if self.message_type not in _SOLAPI_MESSAGE_TYPES:
            raise ValueError(f"message {self.message_id}: {self.message_type!r} is not a Solapi message type")
        payload = {"from": self.sender.replace("-", ""), "to": self.to.replace("-", ""), "text": self.text,
                   "country": "82", "type": self.message_type, "autoTypeDetect": True}
        if self.subject:
            payload["subject"] = self.subject
        payload["customFields"] = {MESSAGE_ID_FIELD: str(self.message_id)}
        kakao = self._kakao()
        if kakao is not None:
            payload["kakaoOptions"] = kakao.model_dump(exclude_none=True, by_alias=True)
        return payload

    def _kakao(self) -> KakaoOption | None:
        if self.message_type != "ATA":
            return None
        return KakaoOption(pf_id=self.pf_id, template_id=self.template_id, variables=self.variables or None,
                           disable_sms=self.disable_sms)


@dataclass(frozen=True)
class MessageResult:
    """Where one of our messages stands at Solapi."""

    message_id: int | None
    solapi_message_id: str
    outcome: StatusOutcome
    status_message: str = ""
    message_type: str = ""
    # Solapi's fallback flag: True when an AlimTalk went out as SMS/LMS; None when not said.
    replacement: bool | None = None


@dataclass(frozen=True)
class Charges:
    """One of a group's money columns (`balance` or `point`), as Solapi bills it. Floats, as
    Solapi sends them, so results stay JSON (Celery); `net` is exact money."""

    requested: float = 0.0
    replacement: float = 0.0
    refund: float = 0.0

    @property
    def net(self) -> Decimal:
        """What Solapi kept: charged on sending, plus fallback sends, minus refunds."""
        # Through str: 8.4 must stay 8.40, not 8.4000000000000003552713678800500929355621337890625.
        requested, replacement, refund = (Decimal(str(v)) for v in (self.requested, self.replacement, self.refund))
        return requested + replacement - refund


@dataclass(frozen=True)
class GroupStatus:
    group_id: str
    status: str
    # True when Solapi answered a send with 409: the group had already gone out.
    already_sent: bool = False
    # AlimTalks Solapi sent as SMS/LMS instead (count.sentReplacement).
    sent_replacement: int = 0
    balance: Charges = Charges()
    point: Charges = Charges()

    @property
    def billed(self) -> Decimal:
        return self.balance.net + self.point.net

    @property
    def went_out(self) -> bool:
        """Solapi has begun sending the group: its status is past PENDING."""
        return self.status != "PENDING"


class RequestLimiter(Protocol):
    def acquire(self) -> None:
        """Return when a call may start; raise SolapiRateLimited to defer it instead."""


class SolapiClient:
    def __init__(self, *, base_url: str, api_key: str, api_secret: str, http: httpx.Client,
                 limiter: RequestLimiter | None = None):
        self.base_url = base_url.rstrip("/")
        self._authenticator = Authenticator(api_key, api_secret)
        self._http = http
        # Slows us down before Solapi has to (messaging/solapi/rate_limit.py).
        self._limiter = limiter

    # --- the group flow: create, add, send. A group is sent at most once. ---------

    def create_group(self) -> str:
        body = self._request("create_group", "POST", "/messages/v4/groups", {"allowDuplicates": True})
        return self._group(body).group_id

    def add_messages(self, group_id: str, messages: Sequence[OutgoingMessage]) -> list[MessageResult]:
        """Register messages in a group, one request. Per-message refusals (1062 …) come back
        here. A refusal that is about our Solapi account (balance, blocked) is nobody's
        message's fault: it raises the SolapiPlatformError it stands for instead."""
        if len(messages) > MAX_MESSAGES_PER_REQUEST:
            raise ValueError(f"{len(messages)} messages exceed Solapi's {MAX_MESSAGES_PER_REQUEST} per request")
        payload = [m.to_payload() for m in messages]
        body = self._request("add_messages", "PUT", f"/messages/v4/groups/{group_id}/messages", {"messages": payload})
        results = body.get("resultList")
        if not isinstance(results, list) or len(results) != len(messages):
            raise SolapiBadResponse("resultList does not match the messages sent", ambiguous=True)
        registered = [_result(item, fallback_id=m.message_id) for item, m in zip(results, messages, strict=True)]
        platform = next((r for r in registered if r.outcome.failure_class in PLATFORM_PAUSE_CLASSES), None)
        if platform:
            raise platform_error(platform.outcome.failure_class, f"{platform.outcome.code} {platform.status_message}",
                                 error_code=platform.outcome.code)
        return registered

    def send_group(self, group_id: str) -> GroupStatus:
        """Send a group. Sending it again answers 409, which we read as already sent."""
        try:
            body = self._request("send_group", "POST", f"/messages/v4/groups/{group_id}/send")
        except _AlreadySent:
            return GroupStatus(group_id=group_id, status="SENDING", already_sent=True)
        return self._group(body)

    def get_group(self, group_id: str) -> GroupStatus:
        return self._group(self._request("get_group", "GET", f"/messages/v4/groups/{group_id}"))

    def get_group_messages(self, group_id: str) -> list[MessageResult]:
        """Every message of a group: page after page, until Solapi gives no nextKey."""
        results: dict[str, MessageResult] = {}
        start_key: str | None = None
        for _ in range(MAX_GROUP_MESSAGE_PAGES):
            query = {"limit": GROUP_MESSAGES_PAGE_LIMIT, **({"startKey": start_key} if start_key else {})}
            body = self._request("get_group_messages", "GET", f"/messages/v4/groups/{group_id}/messages",
                                 params=query)
            try:
                page = GroupMessagesPage.model_validate(body)
            except ValidationError as exc:
                raise SolapiBadResponse(f"group messages: {exc.error_count()} schema errors") from exc
            for key, m in page.message_list.items():
                results[m.message_id or key] = MessageResult(
                    message_id=our_message_id(m.custom_fields),
                    solapi_message_id=m.message_id or key,
                    outcome=classify_status(m.status_code),
                    message_type=str(m.type or ""),
                    replacement=m.replacement,
                )
            if not page.next_key:
                return list(results.values())
            if page.next_key == start_key:
                raise SolapiBadResponse(f"group messages: nextKey {page.next_key} repeats")
            start_key = page.next_key
        raise SolapiBadResponse(f"group messages: more than {MAX_GROUP_MESSAGE_PAGES} pages")

    # --- transport ----------------------------------------------------------------------

    def _request(self, operation: str, method: str, path: str, payload: Any = None,
                 params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Every Solapi call goes through here, so it is counted and timed here, once
        (messaging/metrics.py), with its operation (SolapiOperation's values)."""
        if self._limiter is not None:
            self._limiter.acquire()
        started = time.monotonic()
        http_status, failure_class = None, ""
        try:
            http_status, body = self._send(method, path, payload, params, started)
            return body
        except _AlreadySent:
            http_status = 409  # the group had gone out: an answer, not a failure
            raise
        except SolapiError as error:
            http_status, failure_class = error.http_status, error.failure_class
            raise
        except Exception:
            failure_class = "unknown"
            raise
        finally:
            metrics.record_solapi_call(operation, seconds=time.monotonic() - started, http_status=http_status,
                                       failure_class=failure_class)

    def _send(self, method: str, path: str, payload: Any, params: dict[str, Any] | None,
              started: float) -> tuple[int, dict[str, Any]]:
        # A fresh signature per attempt: Solapi refuses a reused one (DuplicatedSignature).
        headers = {"Authorization": self._authenticator.get_auth_info()}
        try:
            response = self._http.request(method, self.base_url + path, json=payload, params=params,
                                          headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise SolapiConnectionError(f"{type(exc).__name__}: {exc}") from exc
        except httpx.TimeoutException as exc:
            # The request went out; Solapi may have processed it before we stopped waiting.
            raise SolapiTimeout(f"{type(exc).__name__} after {time.monotonic() - started:.1f}s",
                                ambiguous=True) from exc
        except httpx.TransportError as exc:
            raise SolapiConnectionError(f"{type(exc).__name__}: {exc}", ambiguous=True) from exc
        body = _json(response)
        if response.is_success:
            if body is None:
                raise SolapiBadResponse(f"HTTP {response.status_code} without JSON", ambiguous=True)
            return response.status_code, body
        if response.status_code == 409 and (body or {}).get("errorCode") in ALREADY_SENT_CODES:
            raise _AlreadySent()
        raise error_from_response(response.status_code, body, response.text[:300],
                                  retry_after=parse_retry_after(response.headers.get("Retry-After")))

    def _group(self, body: dict[str, Any]) -> GroupStatus:
        try:
            group = GroupMessageResponse.model_validate(body)
        except ValidationError as exc:
            raise SolapiBadResponse(f"group: {exc.error_count()} schema errors", ambiguous=True) from exc
        return GroupStatus(
            group_id=group.group_id,
            status=group.status,
            sent_replacement=group.count.sent_replacement,
            balance=_charges(group.balance),
            point=_charges(group.point),
        )


class _AlreadySent(Exception):
    pass


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _charges(cash: CommonCashResponse) -> Charges:
    return Charges(requested=cash.requested, replacement=cash.replacement, refund=cash.refund)


# Our ids are positive bigints; a larger number cannot be one of ours (and would overflow a query).
_MAX_MESSAGE_ID = 2**63 - 1


def our_message_id(custom_fields: dict | None) -> int | None:
    """Our Message id, from the customFields Solapi echoes back (None when absent or not
    one of ours). ASCII digits only: "²" and "٣" pass str.isdigit() but int() refuses them."""
    value = custom_fields.get(MESSAGE_ID_FIELD) if isinstance(custom_fields, dict) else None
    text = value if isinstance(value, str) else ""
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 0 < number <= _MAX_MESSAGE_ID else None


def _result(item: dict[str, Any], *, fallback_id: int) -> MessageResult:
    return MessageResult(
        message_id=our_message_id(item.get("customFields")) or fallback_id,
        solapi_message_id=str(item.get("messageId") or ""),
        outcome=classify_status(item.get("statusCode")),
        status_message=str(item.get("statusMessage") or ""),
        message_type=str(item.get("type") or ""),
    )


# --- one pooled client per process ----------------------------------------------------

_lock = threading.Lock()
_clients: dict[int, SolapiClient] = {}


def get_client() -> SolapiClient:
    """The process's client. Prefork children each build their own: a connection pool
    must not be shared across fork."""
    pid = os.getpid()
    with _lock:
        if pid not in _clients:
            _clients.clear()
            _clients[pid] = build_client(
                base_url=settings.SOLAPI_BASE_URL,
                api_key=settings.SOLAPI_API_KEY,
                api_secret=settings.SOLAPI_API_SECRET,
                limiter=_account_limiter(),
            )
        return _clients[pid]


def _account_limiter() -> RequestLimiter | None:
    from messaging.solapi.rate_limit import AccountRateLimiter

    rate = settings.SOLAPI_MAX_REQUESTS_PER_SECOND
    return AccountRateLimiter(rate) if rate > 0 else None


def build_client(*, base_url: str, api_key: str, api_secret: str,
                 connect_timeout: float | None = None, read_timeout: float | None = None,
                 limiter: RequestLimiter | None = None) -> SolapiClient:
    connect = connect_timeout or settings.SOLAPI_CONNECT_TIMEOUT
    read = read_timeout or settings.SOLAPI_READ_TIMEOUT
    http = httpx.Client(
        timeout=httpx.Timeout(connect=connect, read=read, write=read, pool=connect),
        # Retrying a failed connect is safe: nothing reached Solapi. Nothing else is retried here.
        transport=httpx.HTTPTransport(
            retries=1, limits=httpx.Limits(max_connections=20, max_keepalive_connections=20)
        ),
        # Never route Solapi traffic through whatever proxy the environment names.
        trust_env=False,
    )
    return SolapiClient(base_url=base_url, api_key=api_key, api_secret=api_secret, http=http, limiter=limiter)
