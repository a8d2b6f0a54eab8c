"""Planning counts a send's shared text once and each name on its own (messaging/compose/planning.py,
`_Texts`). Every planned text, type, size, price and skip must be exactly what rendering the
whole text and asking billing about it gives, recipient by recipient."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.models import MessageType
from billing.pricing import (
    TextTooLong,
    UnsupportedCharacters,
    alimtalk_length,
    hold_amount,
    text_message_type,
)
from messaging.compose.planning import (
    STUDENT_NAME,
    Draft,
    StudentContact,
    message_variables,
    plan_messages,
    render,
)
from messaging.compose.recipient_checks import Standing
from messaging.compose.refusals import Refusal, RefusalCode
from messaging.models import MessageMode, Purpose, SendTo, SkipReason

PRICES = {MessageType.SMS: Decimal("13"), MessageType.LMS: Decimal("29"), MessageType.MMS: Decimal("60"),
          MessageType.ATA: Decimal("9")}
NOON = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 12:00 KST: no night rules
NO_STANDING = Standing(purpose=Purpose.INFO, suppressed={}, consents={})


def _ksx1001(char: str) -> bool:
    try:
        return len(char.encode("euc_kr")) == 2
    except UnicodeEncodeError:
        return False


KSX_HANGUL = [chr(c) for c in range(0xAC00, 0xD7A4) if _ksx1001(chr(c))]
UNSUPPORTED = ["똠", "쀍", "😀", "🎉", "\u1100"]
ascii_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126, exclude_characters="#{}"), max_size=40)
hangul_text = st.text(alphabet=st.sampled_from(KSX_HANGUL), max_size=60)
literals = st.one_of(ascii_text, hangul_text, st.just("\n"))
names = st.one_of(
    st.text(alphabet=st.sampled_from(KSX_HANGUL), min_size=1, max_size=4),
    st.text(alphabet=st.sampled_from([*KSX_HANGUL[:50], *UNSUPPORTED, "A", "b"]), min_size=1, max_size=5),
)


@st.composite
def drafts(draw) -> Draft:
    parts = draw(st.lists(st.one_of(literals, st.sampled_from([f"#{{{STUDENT_NAME}}}", "#{반}"])), max_size=12))
    body = "".join(parts) or "안내"
    replacements = {}
    if "#{반}" in body:
        replacements["반"] = draw(st.one_of(hangul_text, ascii_text))
    if f"#{{{STUDENT_NAME}}}" in body and draw(st.booleans()):
        replacements[STUDENT_NAME] = draw(hangul_text)  # a shared value wins over the student's name
    mode = draw(st.sampled_from([MessageMode.SMS, MessageMode.ALIMTALK, MessageMode.BOTH]))
    subject = draw(st.one_of(st.just(""), hangul_text)) if mode == MessageMode.SMS else ""
    return Draft(mode=mode, send_to=SendTo.PARENT, body=body, subject=subject, replacements=replacements)


def expected(draft: Draft, name: str) -> dict | RefusalCode:
    """One recipient planned the plain way: the whole text rendered, then sized and priced."""
    text = render(draft.source_text, message_variables({STUDENT_NAME: name}, draft.replacements))
    try:
        if draft.uses_alimtalk:
            message_type, size = MessageType.ATA, alimtalk_length(text)
            fallback = text_message_type(text).message_type if draft.mode == MessageMode.BOTH else ""
            subject = ""
        else:
            result = text_message_type(text, draft.subject)
            message_type, size, fallback, subject = result.message_type, result.body_bytes, "", draft.subject
    except UnsupportedCharacters as exc:
        return {"text": text, "skip_reason": SkipReason.UNSUPPORTED_CHARACTERS_IN_NAME,
                "skip_detail": {"student_name": name, "characters": exc.characters}}
    except TextTooLong as exc:
        return RefusalCode.SUBJECT_TOO_LONG if exc.field == "subject" else RefusalCode.BODY_TOO_LONG
    return {"text": text, "message_type": message_type, "bytes": size, "fallback_type": fallback,
            "subject": subject, "price": hold_amount(PRICES, message_type, fallback or None), "skip_reason": ""}


def planned(message) -> dict:
    if message.skip_reason:
        return {"text": message.text, "skip_reason": message.skip_reason, "skip_detail": message.skip_detail}
    return {"text": message.text, "message_type": message.message_type, "bytes": message.bytes,
            "fallback_type": message.fallback_type, "subject": message.subject, "price": message.price,
            "skip_reason": ""}


@settings(max_examples=300, deadline=None)
@given(draft=drafts(), student_names=st.lists(names, min_size=1, max_size=12))
def test_every_text_is_sized_and_priced_as_the_whole_text_would_be(draft, student_names):
    students = [StudentContact(id=i + 1, name=name, phone="", parent_phone=f"010{i + 1:08d}")
                for i, name in enumerate(student_names)]
    wanted = [expected(draft, name) for name in student_names]
    refusals = [w for w in wanted if isinstance(w, RefusalCode)]
    if refusals:
        # The first text that is too long refuses the whole send, with its reason.
        with pytest.raises(Refusal) as refused:
            plan_messages(draft=draft, students=students, prices=PRICES, standing=NO_STANDING, now=NOON)
        assert refused.value.code == refusals[0]
        return
    plan = plan_messages(draft=draft, students=students, prices=PRICES, standing=NO_STANDING, now=NOON)
    got = [planned(m) for m in plan]
    # Siblings' same texts to different phones are never duplicates here: each has their own phone.
    assert got == wanted
