"""A message group, Solapi's unit of sending, and the group object it answers with."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .codes import ACCOUNT_ID, API_VERSION, DEFAULT_COUNTRY, PRICES, GroupStatus, StatusCode
from .messages import Message


@dataclass(frozen=True)
class Tariff:
    """What the sandbox bills, by lower-case type, and an optional billing fault: an extra
    amount on every sent message, for tests that must see our books disagree with Solapi's."""

    prices: dict[str, float] = field(default_factory=lambda: dict(PRICES))
    overbill_per_message: float = 0.0

    def __post_init__(self) -> None:
        if any(not isinstance(price, int | float) or price < 0 for price in self.prices.values()):
            raise ValueError("prices must be non-negative numbers")

    def price(self, message_type: str) -> float:
        return float(self.prices.get(message_type.lower(), 0.0))

    def to_json(self) -> dict[str, Any]:
        return {"prices": dict(self.prices), "overbill_per_message": self.overbill_per_message}

_LOG_CREATED = "메시지 그룹이 생성되었습니다."
_LOG_ADDED = "메시지 {count}건이 추가되었습니다."
_LOG_SENT = "메시지 발송을 요청하였습니다."
_LOG_COMPLETED = "모든 메시지의 발송 결과를 수신하였습니다."
_LOG_FAILED = "접수된 메시지가 없어 그룹 발송에 실패하였습니다."


@dataclass
class Group:
    group_id: str
    allow_duplicates: bool
    app_id: str | None
    custom_fields: dict[str, Any]
    date_created: str
    status: GroupStatus = GroupStatus.PENDING
    messages: list[Message] = field(default_factory=list)
    send_in_progress: bool = False
    awaiting_reports: int = 0
    date_updated: str | None = None
    date_sent: str | None = None
    date_completed: str | None = None
    log: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._note(_LOG_CREATED, self.date_created)

    @property
    def sent(self) -> bool:
        return self.date_sent is not None

    def add(self, messages: list[Message], now: str) -> None:
        self.messages.extend(messages)
        self._note(_LOG_ADDED.format(count=len(messages)), now)

    def send(self, now: str) -> list[Message]:
        """Hand every registered message to the carriers; returns the ones accepted."""
        accepted = [message for message in self.messages if message.registered]
        for message in accepted:
            message.mark_sent(now)
        self.status = GroupStatus.SENDING
        self.date_sent = now
        self.awaiting_reports = len(accepted)
        self._note(_LOG_SENT, now)
        return accepted

    def fail(self, now: str) -> None:
        self.status = GroupStatus.FAILED
        self._note(_LOG_FAILED, now)

    def report_received(self, now: str) -> None:
        self.awaiting_reports -= 1
        if self.awaiting_reports == 0:
            self.status = GroupStatus.COMPLETE
            self.date_completed = now
            self._note(_LOG_COMPLETED, now)

    def _note(self, text: str, now: str) -> None:
        self.log.append({"createAt": now, "message": text})
        self.date_updated = now

    def to_json(self, tariff: Tariff | None = None) -> dict[str, Any]:
        """The group object (validates as solapi's GroupMessageResponse).

        Billing follows what was delivered: every sent message is charged its type on sending
        (`requested`); a failure is refunded; an AlimTalk that fell back is refunded as AlimTalk
        and charged as the text it became (`replacement`). So requested + replacement − refund
        is the price of what was delivered."""
        tariff = tariff or Tariff()
        registered = [message for message in self.messages if message.registered]
        sent = [message for message in registered if message.sent]
        reported = [message for message in sent if message.reported]
        failed = [message for message in reported if message.status_code != StatusCode.DELIVERED]
        fell_back = [message for message in reported if message.fell_back and message not in failed]
        charged = Counter(message.type.lower() for message in registered)
        requested = sum(tariff.price(message.type) for message in sent) + tariff.overbill_per_message * len(sent)
        replacement = sum(tariff.price(message.report_type) for message in fell_back)
        refunded = sum(tariff.price(message.type) for message in failed + fell_back)
        return {
            "groupId": self.group_id,
            "status": self.status,
            "count": {
                "total": len(self.messages),
                "registeredSuccess": len(registered),
                "registeredFailed": len(self.messages) - len(registered),
                "sentTotal": len(sent),
                "sentPending": len(sent) - len(reported),
                "sentSuccess": len(reported) - len(failed),
                "sentFailed": len(failed),
                "sentReplacement": len(fell_back),
                "refund": len(failed),
            },
            "countForCharge": {kind: {DEFAULT_COUNTRY: count} for kind, count in charged.items()},
            "balance": {
                "requested": requested,
                "replacement": replacement,
                "refund": refunded,
                "sum": requested + replacement - refunded,
            },
            "point": {"requested": 0.0, "replacement": 0.0, "refund": 0.0, "sum": 0.0},
            "app": {"profit": dict.fromkeys(tariff.prices, 0.0), "appId": self.app_id},
            "log": self.log,
            "allowDuplicates": self.allow_duplicates,
            "isRefunded": False,
            "accountId": ACCOUNT_ID,
            "masterAccountId": None,
            "apiVersion": API_VERSION,
            "price": {DEFAULT_COUNTRY: dict(tariff.prices)},
            "customFields": self.custom_fields,
            "dateCreated": self.date_created,
            "dateUpdated": self.date_updated,
            "dateSent": self.date_sent,
            "dateCompleted": self.date_completed,
            "scheduledDate": None,
        }
