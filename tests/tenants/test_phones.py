"""Korean phone numbers: normalised to digits before they are stored or sent, masked
before they are logged, and sender / 080 numbers checked on the academy."""

import pytest
from django.core.exceptions import ValidationError

from tenants.models import Student, Tenant
from tenants.phones import InvalidPhone, is_valid_sender, mask_phone, mask_phones_in_text, normalize_phone

# --- normalize_phone ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("01012345678", "01012345678"),
        ("010-1234-5678", "01012345678"),
        ("010 1234 5678", "01012345678"),
        ("010.1234.5678", "01012345678"),
        ("(010) 1234-5678", "01012345678"),
        (" 010-1234-5678\n", "01012345678"),
        ("011-123-4567", "0111234567"),  # old 10-digit mobile prefixes still exist
        ("+82 10-1234-5678", "01012345678"),
        ("+82-010-1234-5678", "01012345678"),  # the 0 written after +82 as well
        ("+821012345678", "01012345678"),
        ("821012345678", "01012345678"),
        ("02-123-4567", "021234567"),  # Seoul, 9 digits
        ("02-1234-5678", "0212345678"),
        ("+82 2 1234 5678", "0212345678"),
        ("031-123-4567", "0311234567"),
        ("031-1234-5678", "03112345678"),
        ("064-712-3456", "0647123456"),
        ("070-1234-5678", "07012345678"),  # internet phone
    ],
)
def test_normalize_phone_accepts_korean_numbers_in_common_spellings(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "   ", " - "])
def test_normalize_phone_treats_empty_as_no_number(raw):
    assert normalize_phone(raw) == ""


@pytest.mark.parametrize(
    "raw",
    [
        "1234",
        "010-1234-56789",  # 12 digits
        "010-12-5678",  # too short
        "012-3456-7890",  # no such mobile prefix
        "00212345678",
        "1588-1234",  # a representative number can send but never receive
        "080-123-4567",  # toll-free: no texts
        "+1 415 555 0100",
        "010-1234-567o",
        "010１２３４５６７８",  # full-width digits would be stored as a different string
        "０１０-１２３４-５６７８",
    ],
)
def test_normalize_phone_rejects_what_is_not_a_korean_number(raw):
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_invalid_phone_message_does_not_reveal_the_number():
    with pytest.raises(InvalidPhone) as caught:
        normalize_phone("010-1234-567890")
    assert "1234" not in str(caught.value)
    assert str(caught.value) == "not a Korean phone number: 010******7890"



@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("0212345678", True),
        ("0311234567", True),
        ("01012345678", True),
        ("07012345678", True),
        ("15881234", True),  # 대표번호 15xx/16xx/18xx: senders only
        ("16001234", True),
        ("18991234", True),
        ("1588123", False),
        ("158812345", False),
        ("17001234", False),
        ("0801234567", False),
        ("02-1234-5678", False),  # digits only, as stored
    ],
)
def test_is_valid_sender(number, valid):
    assert is_valid_sender(number) is valid


# --- masking ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("01012345678", "010****5678"),
        ("010-1234-5678", "010****5678"),
        ("0212345678", "021***5678"),
        ("021234567", "021**4567"),
        ("123456", "******"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_phone_keeps_only_the_ends(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("to=01012345678 status=ok", "to=010****5678 status=ok"),
        ("학생 010-1234-5678, 학부모 010 9876 5432", "학생 010****5678, 학부모 010****5432"),
        ("학원 02-123-4567 으로 연락", "학원 021**4567 으로 연락"),
        ("sender 031.1234.5678", "sender 031****5678"),
        # International spellings reach the logs from raw input; they leaked before.
        ("raw='+82 10-1234-5678'", "raw='821*****5678'"),
        ("raw=+821012345678.", "raw=821*****5678."),
    ],
)
def test_mask_phones_in_text(text, masked):
    assert mask_phones_in_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "balance 12000.00 held 840.00",
        "date 2025-01-15 time 10:30",
        "message 123401012345678 chunk 7",  # a longer number that merely contains one
        "price 8.40 × 1,234 = 10,365.60",
    ],
)
def test_mask_phones_in_text_leaves_other_numbers_alone(text):
    assert mask_phones_in_text(text) == text


# --- models -----------------------------------------------------------------------


def test_student_clean_normalises_both_numbers():
    student = Student(name="김학생", phone="010-1234-5678", parent_phone="+82 10 9876 5432")
    student.clean()
    assert (student.phone, student.parent_phone) == ("01012345678", "01098765432")


def test_student_clean_allows_no_number():
    student = Student(name="김학생", phone="", parent_phone=" ")
    student.clean()
    assert (student.phone, student.parent_phone) == ("", "")


def test_student_clean_rejects_invalid_numbers_field_by_field():
    student = Student(name="김학생", phone="1234", parent_phone="010-1234-5678")
    with pytest.raises(ValidationError) as caught:
        student.clean()
    assert set(caught.value.message_dict) == {"phone"}
    assert student.parent_phone == "01012345678"

    student = Student(name="김학생", phone="1588-1234", parent_phone="02-12")
    with pytest.raises(ValidationError) as caught:
        student.clean()
    assert set(caught.value.message_dict) == {"phone", "parent_phone"}


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("02-1234-5678", "0212345678"),
        ("010-1234-5678", "01012345678"),
        ("1588-1234", "15881234"),  # representative numbers are fine as senders
        ("1600 1234", "16001234"),
        ("", ""),
    ],
)
def test_tenant_clean_normalises_a_valid_sender(raw, stored):
    tenant = Tenant(name="학원", slug="academy", messaging_sender=raw)
    tenant.clean()
    assert tenant.messaging_sender == stored


@pytest.mark.parametrize("raw", ["1234", "080-123-4567", "1588-123", "０２-１２３４-５６７８"])
def test_tenant_clean_rejects_an_invalid_sender(raw):
    tenant = Tenant(name="학원", slug="academy", messaging_sender=raw)
    with pytest.raises(ValidationError) as caught:
        tenant.clean()
    assert set(caught.value.message_dict) == {"messaging_sender"}


@pytest.mark.parametrize(
    ("raw", "stored"), [("080-123-4567", "0801234567"), ("080-1234-5678", "08012345678"), ("", "")]
)
def test_tenant_clean_normalises_the_080_opt_out_number(raw, stored):
    tenant = Tenant(name="학원", slug="academy", ad_opt_out_number=raw)
    tenant.clean()
    assert tenant.ad_opt_out_number == stored


@pytest.mark.parametrize("raw", ["02-123-4567", "010-1234-5678", "080", "080-12", "080-1234-56789"])
def test_tenant_clean_rejects_an_opt_out_number_that_is_not_a_whole_080_number(raw):
    # An ad must end with a number the recipient can call for free; "080" alone is not one.
    tenant = Tenant(name="학원", slug="academy", ad_opt_out_number=raw)
    with pytest.raises(ValidationError) as caught:
        tenant.clean()
    assert set(caught.value.message_dict) == {"ad_opt_out_number"}
