"""Solapi's per-message status codes, classified. The one table.

A message's `statusCode` comes back at registration (adding it to a group), in the
group's message list and in delivery reports. 1xxx = registration error, 2000 =
registered, 2xxx = platform error, 3000 = handed to the carrier, 3xxx = carrier or
Kakao error, 4000 = delivered (docs/solapi.md, "Status codes": Solapi's 2022 table;
tests/solapi/test_outcomes.py walks it code by code).
"""

from dataclasses import dataclass

from messaging.failures import FailureClass as F

REGISTERED = "2000"
HANDED_TO_CARRIER = "3000"
DELIVERED = "4000"
IN_PROGRESS_CODES = frozenset({REGISTERED, HANDED_TO_CARRIER})


def _codes(*items: str | range) -> list[str]:
    out = []
    for item in items:
        out.extend(str(c) for c in item) if isinstance(item, range) else out.append(item)
    return out


STATUS_CODE_CLASSES: dict[str, F] = {
    **dict.fromkeys(_codes("1062", "2062", "3059", "3013"), F.SENDER_UNREGISTERED),
    **dict.fromkeys(_codes("3010", "3032", "3050", "3031"), F.RECIPIENT_INVALID),
    **dict.fromkeys(_codes("1061", "2061"), F.RECIPIENT_OPTED_OUT),
    **dict.fromkeys(
        _codes("1060", "2060", "1064", "2064", "2254", "3047", "3054", "3055", "3060"), F.RECIPIENT_BLOCKED
    ),
    **dict.fromkeys(
        _codes("1010", "1011", "2011", "3011", "1013", "1014", "1025", "1026", "1027", "1028", "1029",
               "1031", "1032", "1033", "1034"),
        F.CONTENT,
    ),
    **dict.fromkeys(_codes(range(1041, 1054), "3101", "3103", "3105", "3106"), F.KAKAO_CONFIG),
    # Not a KakaoTalk user, not a channel friend, AlimTalk blocked: the number is fine for SMS,
    # so these never feed the suppression list.
    **dict.fromkeys(_codes("3102", "3104", "3107"), F.KAKAO_CONFIG),
    **dict.fromkeys(
        _codes("1024", "2024", "3024", "3012", "3014", "3048", range(3040, 3047), "3051", "3052", "3053",
               "3056", "3057", "3058", "3108"),
        F.TRANSIENT,
    ),
    **dict.fromkeys(_codes("1030", "2230"), F.PLATFORM_BALANCE),
    "2063": F.PLATFORM,
    "1020": F.AUTH_FAILED,
    **dict.fromkeys(_codes("1021", "1022", "1023"), F.REJECTED),
}


@dataclass(frozen=True)
class StatusOutcome:
    code: str
    failure_class: F | None  # None: success or still in progress

    @property
    def delivered(self) -> bool:
        return self.code == DELIVERED

    @property
    def in_progress(self) -> bool:
        return self.code in IN_PROGRESS_CODES


def classify_status(code: str | None) -> StatusOutcome:
    """What a Solapi statusCode means for our message.

    Unknown codes: a 1xxx code is a registration refusal and stays refused (permanent);
    a 3xxx code comes from a carrier and is treated as a temporary failure, which
    Solapi refunds and staff may send again; anything else is unknown and permanent.
    """
    code = str(code or "")
    if code == DELIVERED or code in IN_PROGRESS_CODES:
        return StatusOutcome(code, None)
    if code in STATUS_CODE_CLASSES:
        return StatusOutcome(code, STATUS_CODE_CLASSES[code])
    if code.startswith("3"):
        return StatusOutcome(code, F.TRANSIENT)
    return StatusOutcome(code, F.UNKNOWN)
