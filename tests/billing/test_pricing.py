"""Message type and price from EUC-KR bytes, the way carriers count them.

Property tests generate Hangul only from the 2,350 syllables KS X 1001 encodes; the
other 8,822 modern syllables (e.g. '똠') are unsupported, like emoji.
"""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.models import MessageType, Price, TenantPrice
from billing.pricing import (
    LMS_MAX_BYTES,
    SMS_MAX_BYTES,
    SUBJECT_MAX_BYTES,
    PriceNotConfigured,
    TextTooLong,
    UnsupportedCharacters,
    euckr_bytes,
    hold_amount,
    price_list,
    price_of,
    text_message_type,
)
from harness.academies import make_tenant
from tests.billing.conftest import PLATFORM_PRICES


def _ksx1001(char: str) -> bool:
    try:
        return len(char.encode("euc_kr")) == 2
    except UnicodeEncodeError:
        return False


ALL_HANGUL = [chr(c) for c in range(0xAC00, 0xD7A4)]
KSX_HANGUL = [c for c in ALL_HANGUL if _ksx1001(c)]
NON_KSX_HANGUL = [c for c in ALL_HANGUL if not _ksx1001(c)]
# Emoticons, pictographs, transport: none of them is in EUC-KR.
EMOJI = [chr(c) for c in (*range(0x1F300, 0x1F3FF), *range(0x1F600, 0x1F64F), *range(0x1F680, 0x1F6C5))]

ascii_chars = st.characters(min_codepoint=0, max_codepoint=127)
hangul_chars = st.sampled_from(KSX_HANGUL)
unsupported_chars = st.sampled_from(EMOJI + NON_KSX_HANGUL)
mixed_texts = st.text(alphabet=st.one_of(ascii_chars, hangul_chars), max_size=1100)


def expected_bytes(text: str) -> int:
    return sum(1 if ord(c) < 128 else 2 for c in text)


def test_hangul_strategy_is_exactly_ks_x_1001():
    # Guards the generators below: KS X 1001 has 2,350 precomposed syllables.
    assert len(KSX_HANGUL) == 2350
    assert "가" in KSX_HANGUL and "힝" in KSX_HANGUL
    assert "똠" in NON_KSX_HANGUL and "쀍" in NON_KSX_HANGUL


# --- byte counting ----------------------------------------------------------------


@given(st.text(alphabet=ascii_chars))
def test_ascii_counts_one_byte_per_character(text):
    assert euckr_bytes(text) == len(text)


@given(st.text(alphabet=hangul_chars))
def test_ks_x_1001_hangul_counts_two_bytes_per_syllable(text):
    assert euckr_bytes(text) == 2 * len(text)


@given(mixed_texts)
def test_mixed_text_counts_ascii_once_and_hangul_twice(text):
    assert euckr_bytes(text) == expected_bytes(text)


@given(mixed_texts, st.lists(unsupported_chars, min_size=1, max_size=5), st.randoms(use_true_random=False))
def test_unsupported_characters_are_named_in_order_of_appearance(text, bad, rnd):
    # Scatter the unsupported characters through otherwise valid text.
    chars = list(text)
    for char in bad:
        chars.insert(rnd.randint(0, len(chars)), char)
    text = "".join(chars)
    with pytest.raises(UnsupportedCharacters) as caught:
        euckr_bytes(text)
    named = [c for c in dict.fromkeys(text) if c in set(bad)]
    assert caught.value.characters == named
    for char in named:
        assert char in str(caught.value)


def test_hangul_outside_ks_x_1001_is_refused_not_counted_as_eight_bytes():
    # Python's euc_kr codec writes '똠' as an 8-byte jamo sequence (KS X 1001 §4.3)
    # instead of failing; counting it would silently turn an SMS into an LMS.
    assert len("똠".encode("euc_kr")) == 8
    with pytest.raises(UnsupportedCharacters) as caught:
        euckr_bytes("아버지 " + "x" * 20 + " 똠방각하")
    assert caught.value.characters == ["똠"]
    assert str(caught.value) == "characters outside EUC-KR: 똠"


def test_the_hangul_filler_itself_is_one_two_byte_character():
    # The 8-byte sequences start with its bytes (the fast path's check): alone it is sendable.
    assert euckr_bytes("\u3164") == 2
    assert euckr_bytes("가\u3164나 x") == 8


def test_emoji_is_refused_with_a_clear_reason():
    with pytest.raises(UnsupportedCharacters) as caught:
        text_message_type("수업 끝! 👍👍 내일 봐요 🎉")
    assert caught.value.characters == ["👍", "🎉"]
    assert "outside EUC-KR" in str(caught.value)


def test_unsupported_characters_in_the_subject_are_refused():
    with pytest.raises(UnsupportedCharacters) as caught:
        text_message_type("본문", subject="공지 📢")
    assert caught.value.characters == ["📢"]


# --- type choice ------------------------------------------------------------------


@settings(max_examples=200)
@given(mixed_texts)
def test_type_follows_the_byte_count(text):
    size = expected_bytes(text)
    if size > LMS_MAX_BYTES:
        with pytest.raises(TextTooLong) as caught:
            text_message_type(text)
        assert (caught.value.field, caught.value.length, caught.value.limit) == ("body", size, LMS_MAX_BYTES)
        return
    result = text_message_type(text)
    assert result.body_bytes == size
    assert result.subject_bytes == 0
    assert result.message_type == (MessageType.SMS if size <= SMS_MAX_BYTES else MessageType.LMS)


@given(
    st.text(alphabet=st.one_of(ascii_chars, hangul_chars), max_size=40),
    st.text(alphabet=hangul_chars, min_size=1, max_size=20),
)
def test_a_subject_always_makes_an_lms(body, subject):
    result = text_message_type(body, subject)
    assert result.message_type == MessageType.LMS
    assert result.subject_bytes == 2 * len(subject)


@pytest.mark.parametrize(
    ("body", "expected_type", "expected_bytes"),
    [
        ("a" * 90, MessageType.SMS, 90),
        ("a" * 91, MessageType.LMS, 91),
        ("가" * 45, MessageType.SMS, 90),
        ("가" * 44 + "ab", MessageType.SMS, 90),
        ("가" * 45 + "a", MessageType.LMS, 91),
        # The character-counting bug: 46 Hangul characters are 92 bytes, not 46.
        ("가" * 46, MessageType.LMS, 92),
        ("a" * 2000, MessageType.LMS, 2000),
        ("가" * 1000, MessageType.LMS, 2000),
    ],
)
def test_body_boundaries(body, expected_type, expected_bytes):
    result = text_message_type(body)
    assert (result.message_type, result.body_bytes) == (expected_type, expected_bytes)


@pytest.mark.parametrize("body", ["a" * 2001, "가" * 1000 + "a", "가" * 1001])
def test_body_over_2000_bytes_is_too_long(body):
    with pytest.raises(TextTooLong) as caught:
        text_message_type(body)
    assert caught.value.field == "body"
    assert caught.value.length == expected_bytes(body)
    assert caught.value.limit == 2000


@pytest.mark.parametrize("subject", ["a" * 40, "가" * 20, "가" * 19 + "ab"])
def test_subject_of_40_bytes_fits(subject):
    result = text_message_type("안녕하세요", subject)
    assert (result.message_type, result.subject_bytes) == (MessageType.LMS, SUBJECT_MAX_BYTES)


@pytest.mark.parametrize("subject", ["a" * 41, "가" * 20 + "a", "가" * 21])
def test_subject_of_41_bytes_is_too_long(subject):
    with pytest.raises(TextTooLong) as caught:
        text_message_type("안녕하세요", subject)
    assert (caught.value.field, caught.value.length, caught.value.limit) == ("subject", expected_bytes(subject), 40)


# --- prices -----------------------------------------------------------------------


@pytest.mark.django_db
def test_price_list_applies_overrides_for_one_academy_only(prices, django_assert_num_queries):
    negotiated, other = make_tenant(), make_tenant()
    TenantPrice.objects.create(tenant=negotiated, message_type=MessageType.SMS, amount=Decimal("7.00"))
    with django_assert_num_queries(1):
        negotiated_prices = price_list(negotiated)
    assert negotiated_prices == {**PLATFORM_PRICES, MessageType.SMS: Decimal("7.00")}
    assert price_list(other) == PLATFORM_PRICES


@pytest.mark.django_db
def test_an_override_can_price_a_type_the_platform_does_not():
    Price.objects.create(message_type=MessageType.SMS, amount=Decimal("8.40"))
    pilot, other = make_tenant(), make_tenant()
    TenantPrice.objects.create(tenant=pilot, message_type=MessageType.ATA, amount=Decimal("6.00"))
    assert price_of(price_list(pilot), MessageType.ATA) == Decimal("6.00")
    with pytest.raises(PriceNotConfigured):
        price_of(price_list(other), MessageType.ATA)


@pytest.mark.django_db
def test_a_missing_price_is_a_configuration_error_not_a_free_send():
    tenant = make_tenant()
    assert price_list(tenant) == {}
    with pytest.raises(PriceNotConfigured) as caught:
        price_of(price_list(tenant), MessageType.SMS)
    assert caught.value.message_type == MessageType.SMS
    assert str(caught.value) == "no price configured for SMS"


@pytest.mark.django_db
def test_prices_cannot_be_negative():
    with pytest.raises(IntegrityError), transaction.atomic():
        Price.objects.create(message_type=MessageType.SMS, amount=Decimal("-1.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        TenantPrice.objects.create(tenant=make_tenant(), message_type=MessageType.SMS, amount=Decimal("-1.00"))


def test_hold_amount_without_fallback_is_the_type_price():
    assert hold_amount(PLATFORM_PRICES, MessageType.ATA, None) == Decimal("6.50")
    assert hold_amount(PLATFORM_PRICES, MessageType.LMS, None) == Decimal("25.90")


@pytest.mark.parametrize(
    ("ata", "fallback_type", "expected"),
    [
        (Decimal("6.50"), MessageType.SMS, Decimal("8.40")),
        (Decimal("6.50"), MessageType.LMS, Decimal("25.90")),
        # A negotiated AlimTalk dearer than SMS: the AlimTalk price is the ceiling.
        (Decimal("9.00"), MessageType.SMS, Decimal("9.00")),
    ],
)
def test_alimtalk_with_fallback_holds_the_dearer_price(ata, fallback_type, expected):
    prices = {**PLATFORM_PRICES, MessageType.ATA: ata}
    assert hold_amount(prices, MessageType.ATA, fallback_type) == expected


def test_a_fallback_without_a_price_is_refused_not_held_at_the_alimtalk_price():
    prices = {MessageType.ATA: Decimal("6.50")}
    with pytest.raises(PriceNotConfigured) as caught:
        hold_amount(prices, MessageType.ATA, MessageType.SMS)
    assert caught.value.message_type == MessageType.SMS
