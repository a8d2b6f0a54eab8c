"""Korean phone numbers: normalise to digits, validate, mask for logs."""

import re

# Mobile numbers (010, 011, 016-019) and landlines (02, 0xx), 9-11 digits, and the
# 8-digit representative numbers (15xx, 16xx, 18xx) that can only send. ASCII digits
# only: a Unicode \d would let '010１２３４５６７８' through as a different string.
_MOBILE = re.compile(r"^01[016789]\d{7,8}$", re.ASCII)
_LANDLINE = re.compile(r"^0(2|[3-6][1-5]|70)\d{7,8}$", re.ASCII)
_REPRESENTATIVE = re.compile(r"^1[5689]\d{6}$", re.ASCII)

# What people type between the digits; removed before validating.
_SEPARATORS = re.compile(r"[\s\-().]")
# Anything that looks like a Korean phone number inside free text, with or without
# separators, domestic (010…) or international (+82 10…). Used to mask logs and task results.
PHONE_IN_TEXT = re.compile(r"(?<!\d)(\+82[-. ]?0?|0)(\d{1,2})[-. ]?(\d{3,4})[-. ]?(\d{4})(?!\d)")


class InvalidPhone(ValueError):
    pass


def normalize_phone(raw: str | None) -> str:
    """Digits only, +82 folded to 0. Returns "" for an empty value; raises InvalidPhone."""
    if raw is None:
        return ""
    # Most stored numbers are digits already: skip the substitution (a send normalises up to
    # 10,000 of them). isascii() first: str.isdigit() also accepts other scripts' digits.
    digits = raw if type(raw) is str and raw.isascii() and raw.isdigit() else _SEPARATORS.sub("", str(raw))
    if not digits:
        return ""
    if digits.startswith("+82"):
        digits = "0" + digits[3:].lstrip("0")
    elif digits.startswith("82") and len(digits) >= 11:
        digits = "0" + digits[2:].lstrip("0")
    if not digits.isdigit() or not (_MOBILE.match(digits) or _LANDLINE.match(digits)):
        raise InvalidPhone(f"not a Korean phone number: {mask_phone(digits)}")
    return digits


def is_valid_sender(number: str) -> bool:
    """A 발신번호: a landline, mobile or representative number, digits only."""
    return bool(_MOBILE.match(number) or _LANDLINE.match(number) or _REPRESENTATIVE.match(number))


def mask_phone(phone: str | None) -> str:
    """010****5678: enough to recognise a number, not enough to use it."""
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_phones_in_text(text: str) -> str:
    return PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group(0)), text)
