"""Message type and price: from EUC-KR bytes, the way carriers count them.

Counting characters instead of bytes is the common bug: 46 Hangul characters are 92
bytes, an LMS at about three times the SMS price (docs/korean-rules.md, "Length is
counted in EUC-KR bytes").
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Value

from billing.models import MessageType, Price, TenantPrice
from tenants.models import Tenant

SMS_MAX_BYTES = 90
LMS_MAX_BYTES = 2000
SUBJECT_MAX_BYTES = 40
# AlimTalk counts characters, not bytes, and is not limited to EUC-KR.
ALIMTALK_MAX_CHARS = 1000


class PricingError(ValueError):
    """The text cannot be sent as written, or the platform is missing a price."""


class UnsupportedCharacters(PricingError):
    def __init__(self, characters: list[str]):
        self.characters = characters
        super().__init__(f"characters outside EUC-KR: {' '.join(characters)}")


class TextTooLong(PricingError):
    def __init__(self, field: str, length: int, limit: int):
        self.field, self.length, self.limit = field, length, limit
        super().__init__(f"{field} is {length} bytes; the limit is {limit}")


class PriceNotConfigured(PricingError):
    def __init__(self, message_type: str):
        self.message_type = message_type
        super().__init__(f"no price configured for {message_type}")


# Python writes a Hangul syllable outside KS X 1001 (e.g. '똠') as an 8-byte jamo sequence
# that starts with the Hangul filler, 0xA4D4 (see _encodable).
_HANGUL_FILLER = "\u3164".encode("euc_kr")


def euckr_bytes(text: str) -> int:
    """Length in EUC-KR bytes (Hangul 2, ASCII 1). Raises UnsupportedCharacters."""
    try:
        encoded = text.encode("euc_kr")
    except UnicodeEncodeError:
        encoded = b""
    # One encode of the whole text is enough when no character failed and none became a
    # jamo sequence: checking character by character took most of a 1,000-recipient
    # preview's planning (every text is measured). The filler's bytes may also appear
    # across two characters; then the slow check below decides, as it always did.
    if encoded and _HANGUL_FILLER not in encoded:
        return len(encoded)
    bad = unsupported_characters(text)
    if bad:
        raise UnsupportedCharacters(bad)
    return len(encoded)


def unsupported_characters(text: str) -> list[str]:
    """The characters of `text` that SMS/LMS cannot carry, each once, in order of appearance."""
    if text.isascii():
        return []
    return [c for c in dict.fromkeys(text) if not _encodable(c)]


def _encodable(char: str) -> bool:
    # Python writes a Hangul syllable outside KS X 1001 (e.g. '똠') as an 8-byte jamo
    # sequence instead of failing; phones do not show it, so it counts as unsupported.
    try:
        return len(char.encode("euc_kr")) <= 2
    except UnicodeEncodeError:
        return False


@dataclass(frozen=True)
class TextSize:
    message_type: str
    body_bytes: int
    subject_bytes: int


def text_message_type(body: str, subject: str = "") -> TextSize:
    """SMS up to 90 bytes without a subject; LMS up to 2,000 bytes; else TextTooLong."""
    body_bytes = euckr_bytes(body)
    subject_bytes = euckr_bytes(subject) if subject else 0
    if subject_bytes > SUBJECT_MAX_BYTES:
        raise TextTooLong("subject", subject_bytes, SUBJECT_MAX_BYTES)
    if body_bytes > LMS_MAX_BYTES:
        raise TextTooLong("body", body_bytes, LMS_MAX_BYTES)
    # A subject makes it an LMS: SMS has no subject line (Solapi 1013).
    message_type = MessageType.SMS if body_bytes <= SMS_MAX_BYTES and not subject else MessageType.LMS
    return TextSize(message_type, body_bytes, subject_bytes)


def alimtalk_length(body: str) -> int:
    if len(body) > ALIMTALK_MAX_CHARS:
        raise TextTooLong("body", len(body), ALIMTALK_MAX_CHARS)
    return len(body)


def price_list(tenant: Tenant) -> dict[str, Decimal]:
    """Every configured price for this academy, overrides applied. One statement for both (every
    preview and send reads them)."""
    platform = Price.objects.annotate(own=Value(False)).values_list("message_type", "amount", "own")
    overrides = (TenantPrice.objects.filter(tenant=tenant).annotate(own=Value(True))
                 .values_list("message_type", "amount", "own"))
    # The academy's own prices last, so they replace the platform's.
    return {message_type: amount for message_type, amount, _own in
            sorted(platform.union(overrides, all=True), key=lambda row: row[2])}


def price_of(prices: Mapping[str, Decimal], message_type: str) -> Decimal:
    try:
        return prices[message_type]
    except KeyError:
        raise PriceNotConfigured(message_type) from None


def hold_amount(prices: Mapping[str, Decimal], message_type: str, fallback_type: str | None) -> Decimal:
    """AlimTalk with SMS fallback holds the dearer of the two; what is billed is captured later."""
    amount = price_of(prices, message_type)
    if fallback_type:
        amount = max(amount, price_of(prices, fallback_type))
    return amount
