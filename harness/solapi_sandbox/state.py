"""The fake Solapi account: registered senders, recipient outcomes, platform balance, and the
groups with their messages. One lock guards it all; callers get JSON-ready copies."""

import threading
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from .codes import DEFAULT_PAGE_LIMIT, DEFAULT_PLATFORM_BALANCE, MAX_PAGE_LIMIT, ErrorCode, FallbackSignal
from .errors import SolapiError, not_found, validation_error
from .formats import digits_only, new_group_id, timestamp
from .groups import Group, Tariff
from .messages import Message, RecipientOutcome, RegistrationRules


class SandboxState:
    def __init__(self, senders: Iterable[str] = (), platform_balance: float = DEFAULT_PLATFORM_BALANCE) -> None:
        self._lock = threading.Lock()
        self._senders = {digits_only(number) for number in senders}
        self._outcomes: dict[str, RecipientOutcome] = {}
        self._initial_balance = platform_balance
        self._balance = platform_balance
        self._point = 0.0
        self._balance_exhausted = False
        self._groups: dict[str, Group] = {}
        self._sent_messages: dict[str, Message] = {}
        self._tariff = Tariff()
        self._fallback_signal = FallbackSignal.TYPE

    def reset(self) -> None:
        """Forget groups, messages, recipient outcomes, balance, tariff and fallback-signal
        changes; keep the senders."""
        with self._lock:
            self._outcomes.clear()
            self._groups.clear()
            self._sent_messages.clear()
            self._balance, self._point, self._balance_exhausted = self._initial_balance, 0.0, False
            self._tariff = Tariff()
            self._fallback_signal = FallbackSignal.TYPE

    # --- how Solapi bills and reports ------------------------------------------------------

    def set_tariff(self, prices: dict[str, float] | None = None, overbill_per_message: float | None = None) -> None:
        with self._lock:
            current = self._tariff
            self._tariff = Tariff(
                {**current.prices, **{kind.lower(): float(price) for kind, price in (prices or {}).items()}},
                current.overbill_per_message if overbill_per_message is None else float(overbill_per_message),
            )

    @property
    def tariff(self) -> Tariff:
        with self._lock:
            return self._tariff

    def set_fallback_signal(self, signal: str) -> None:
        with self._lock:
            self._fallback_signal = FallbackSignal(signal)

    @property
    def fallback_signal(self) -> FallbackSignal:
        with self._lock:
            return self._fallback_signal

    # --- senders and recipients -------------------------------------------------------------

    def register_sender(self, number: str) -> None:
        with self._lock:
            self._senders.add(digits_only(number))

    def unregister_sender(self, number: str) -> None:
        with self._lock:
            self._senders.discard(digits_only(number))

    @property
    def senders(self) -> list[str]:
        with self._lock:
            return sorted(self._senders)

    def set_recipient_outcome(self, phone: str, outcome: RecipientOutcome | None) -> None:
        with self._lock:
            if outcome is None:
                self._outcomes.pop(digits_only(phone), None)
            else:
                self._outcomes[digits_only(phone)] = outcome

    @property
    def recipient_outcomes(self) -> dict[str, RecipientOutcome]:
        with self._lock:
            return dict(self._outcomes)

    def registration_rules(self) -> RegistrationRules:
        with self._lock:
            return RegistrationRules(frozenset(self._senders), dict(self._outcomes))

    # --- platform balance -------------------------------------------------------------------

    def set_platform_balance(
        self, balance: float | None = None, point: float | None = None, exhausted: bool | None = None
    ) -> None:
        with self._lock:
            if balance is not None:
                self._balance = float(balance)
            if point is not None:
                self._point = float(point)
            if exhausted is not None:
                self._balance_exhausted = exhausted

    def platform_balance(self) -> dict[str, Any]:
        """`{"balance", "point"}` as GET /cash/v1/balance answers, plus the `exhausted` switch."""
        with self._lock:
            balance = 0.0 if self._balance_exhausted else self._balance
            return {"balance": balance, "point": self._point, "exhausted": self._balance_exhausted}

    def require_balance(self) -> None:
        with self._lock:
            self._require_balance()

    def _require_balance(self) -> None:
        if self._balance_exhausted:
            raise SolapiError(HTTPStatus.PAYMENT_REQUIRED, ErrorCode.NOT_ENOUGH_BALANCE)

    # --- groups -----------------------------------------------------------------------------

    def create_group(
        self,
        allow_duplicates: bool = False,
        app_id: str | None = None,
        custom_fields: dict | None = None,
        group_id: str | None = None,
    ) -> dict[str, Any]:
        group = Group(group_id or new_group_id(), bool(allow_duplicates), app_id, custom_fields or {}, timestamp())
        with self._lock:
            self._groups[group.group_id] = group
            return group.to_json(self._tariff)

    def add_messages(self, group_id: str, messages: list[Message]) -> None:
        with self._lock:
            group = self._group(group_id)
            if group.sent or group.send_in_progress:
                raise SolapiError(HTTPStatus.BAD_REQUEST, ErrorCode.INVALID_GROUP_STATUS)
            group.add(messages, timestamp())

    def check_group_exists(self, group_id: str) -> None:
        with self._lock:
            self._group(group_id)

    def begin_send(self, group_id: str) -> None:
        """Claim the group for sending; a second send meanwhile gets GroupInProcessing."""
        with self._lock:
            group = self._group(group_id)
            if group.sent:
                raise SolapiError(HTTPStatus.CONFLICT, ErrorCode.ALREADY_SENT)
            if group.send_in_progress:
                raise SolapiError(HTTPStatus.CONFLICT, ErrorCode.GROUP_IN_PROCESSING)
            if not any(message.registered for message in group.messages):
                raise validation_error("발송 가능한 메시지가 없습니다.")
            self._require_balance()
            group.send_in_progress = True

    def finish_send(self, group_id: str) -> tuple[dict[str, Any], list[Message]]:
        """Send a claimed group: its group object and the messages accepted."""
        with self._lock:
            group = self._group(group_id)
            group.send_in_progress = False
            accepted = group.send(timestamp())
            self._sent_messages.update((message.message_id, message) for message in accepted)
            return group.to_json(self._tariff), accepted

    def abandon_send(self, group_id: str) -> None:
        with self._lock:
            if group := self._groups.get(group_id):
                group.send_in_progress = False

    def fail_group(self, group_id: str) -> dict[str, Any]:
        """Mark a group that had nothing to send as FAILED (send-many with every message refused)."""
        with self._lock:
            group = self._group(group_id)
            group.fail(timestamp())
            return group.to_json(self._tariff)

    def group_json(self, group_id: str) -> dict[str, Any]:
        with self._lock:
            return self._group(group_id).to_json(self._tariff)

    def group_messages_json(self, group_id: str, start_key: str | None, limit: str | None) -> dict[str, Any]:
        """One page of the group-messages listing, paged as Solapi pages it: `limit` items
        (20 without one, at most 500), starting at `startKey`, the previous page's `nextKey`.
        The last page has `nextKey: null`. A bad limit or a key from elsewhere is refused."""
        if limit is None:
            size = DEFAULT_PAGE_LIMIT
        elif limit.isdigit() and 1 <= int(limit) <= MAX_PAGE_LIMIT:
            size = int(limit)
        else:
            raise validation_error(f"limit 은 1 이상 {MAX_PAGE_LIMIT} 이하의 정수여야 합니다.")
        with self._lock:
            messages = self._group(group_id).messages
            start = 0
            if start_key:
                start = next((i for i, m in enumerate(messages) if m.message_id == start_key), -1)
                if start < 0:
                    raise validation_error(f"startKey({start_key})가 이 그룹의 메시지가 아닙니다.")
            page = messages[start : start + size]
            following = start + len(page)
            return {
                "startKey": start_key,
                "nextKey": messages[following].message_id if following < len(messages) else None,
                "limit": size,
                "messageList": {message.message_id: message.detail(self._fallback_signal) for message in page},
            }

    def record_reports(self, message_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Give each sent message its final status; returns the report data of those that changed."""
        reports = []
        with self._lock:
            now = timestamp()
            for message_id in message_ids:
                message = self._sent_messages.get(message_id)
                if message is None or message.reported:
                    continue
                message.mark_reported(now)
                self._groups[message.group_id].report_received(now)
                reports.append(message.report(self._fallback_signal))
        return reports

    def _group(self, group_id: str) -> Group:
        try:
            return self._groups[group_id]
        except KeyError:
            raise not_found(f"그룹({group_id})") from None
