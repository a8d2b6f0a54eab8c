"""From "send this to these students' parents" to one planned message per recipient:
who receives it, the text they get, its type and price, or why they are skipped.

Pure planning: nothing here writes to the database, so the preview and the send
share it exactly.
"""

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from billing.models import MessageType
from billing.pricing import (
    PriceNotConfigured,
    TextTooLong,
    UnsupportedCharacters,
    alimtalk_length,
    euckr_bytes,
    hold_amount,
    text_message_type,
    unsupported_characters,
)
from messaging.compose import rules
from messaging.compose.recipient_checks import Recipient, Standing
from messaging.compose.refusals import Refusal, RefusalCode
from messaging.models import MessageMode, Purpose, SendTo, SkipReason
from project import clock
from tenants.models import AlimTalkTemplate, RecipientKind
from tenants.phones import InvalidPhone, normalize_phone

VARIABLE = re.compile(r"#\{([^{}]+)\}")
# The per-student variable every body may use.
STUDENT_NAME = "이름"


@dataclass(frozen=True)
class Draft:
    mode: str
    send_to: str
    body: str
    subject: str = ""
    template: AlimTalkTemplate | None = None
    replacements: Mapping[str, str] = field(default_factory=dict)
    purpose: str = Purpose.INFO

    @property
    def uses_alimtalk(self) -> bool:
        return self.mode in (MessageMode.ALIMTALK, MessageMode.BOTH)

    @property
    def source_text(self) -> str:
        """AlimTalk must match its approved template, so the template is the text."""
        return self.template.content if self.uses_alimtalk and self.template else self.body


class StudentContact(NamedTuple):
    """What planning reads of a student: read as plain rows, not model instances (a send
    plans up to 10,000 of them)."""

    id: int
    name: str
    phone: str
    parent_phone: str


# Slots: a send makes up to 10,000 of them.
@dataclass(slots=True)
class PlannedMessage:
    student_id: int
    recipient_kind: str
    phone: str
    text: str = ""
    subject: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    message_type: str = ""
    fallback_type: str = ""
    price: Decimal = Decimal("0")
    bytes: int = 0
    skip_reason: str = ""
    # What the skipped entry says besides its reason (the name that cannot be sent).
    skip_detail: dict[str, object] = field(default_factory=dict)
    # An ad at night to someone without night consent waits until 08:00 KST.
    not_before: datetime | None = None
    # A staff resend of this failed message (messaging/compose/resend.py).
    retry_of_id: int | None = None
    # Its row's id, once the send request is written (messaging/compose/message_rows.py).
    message_id: int | None = None

    @property
    def skipped(self) -> bool:
        return bool(self.skip_reason)


def plan_messages(
    *,
    draft: Draft,
    students: Iterable[StudentContact],
    prices: Mapping[str, Decimal],
    standing: Standing,
    now: datetime | None = None,
) -> list[PlannedMessage]:
    """One PlannedMessage per recipient, in student order; raises Refusal for problems
    of the text itself, which no recipient could receive. An ad reaches only recipients
    with marketing consent, and at night only those with night consent right away
    (messaging/compose/recipient_checks.py, asked again when the message is sent)."""
    check_variables(draft)
    check_text_encodes(draft)
    texts = _Texts(draft, prices)
    now = now or clock.kst_now()
    planned: list[PlannedMessage] = []
    deferred = 0
    seen: set[tuple[str, str]] = set()
    night_rule = standing.purpose == Purpose.AD
    for student, kind, raw_phone in recipients(students, draft.send_to):
        # Each message is built once, whole: a send plans up to 10,000 of them.
        try:
            phone = normalize_phone(raw_phone)
        except InvalidPhone:
            planned.append(PlannedMessage(student.id, kind, "", skip_reason=SkipReason.INVALID_PHONE))
            continue
        if not phone:
            planned.append(PlannedMessage(student.id, kind, "", skip_reason=SkipReason.NO_PHONE))
            continue
        recipient = Recipient(student.id, kind, phone)
        skip_reason = standing.skip_reason(recipient)
        if skip_reason:
            planned.append(PlannedMessage(student.id, kind, phone, skip_reason=skip_reason))
            continue
        # Only the recipient's own variables are stored per message; the shared ones are
        # stored once, on the send request (alimtalk_replacements).
        variables = {STUDENT_NAME: student.name}
        text = texts.text(student.name)
        # Siblings share a parent's phone: one message each only if their texts differ.
        if (phone, text) in seen:
            planned.append(PlannedMessage(student.id, kind, phone, text=text, variables=variables,
                                          skip_reason=SkipReason.DUPLICATE_PHONE))
            continue
        try:
            size = texts.size(text, student.name)
        except UnsupportedCharacters as exc:
            # The text itself encodes (check_text_encodes): what does not is this student's
            # name. Skip them, by name, and send the rest of the class.
            planned.append(PlannedMessage(
                student.id, kind, phone, text=text, variables=variables,
                skip_reason=SkipReason.UNSUPPORTED_CHARACTERS_IN_NAME,
                skip_detail={"student_name": student.name, "characters": exc.characters}))
            continue
        seen.add((phone, text))
        not_before = None
        if night_rule and standing.must_wait(recipient, now):
            not_before = rules.release_time(rules.next_morning(now), deferred)
            deferred += 1
        planned.append(PlannedMessage(
            student.id, kind, phone, text=text, subject=size.subject, variables=variables,
            message_type=size.message_type, fallback_type=size.fallback_type, price=size.price,
            bytes=size.bytes, not_before=not_before))
    return planned


def check_variables(draft: Draft) -> None:
    """Every variable of the text has a value, and every shared value a variable: a key the
    text does not use would only be stored and sent for nothing."""
    used = set(VARIABLE.findall(draft.source_text))
    unknown = sorted(used - {STUDENT_NAME} - set(draft.replacements))
    if unknown:
        raise Refusal(RefusalCode.UNKNOWN_VARIABLE, variables=", ".join(f"#{{{v}}}" for v in unknown))
    unused = sorted(set(draft.replacements) - used)
    if unused:
        raise Refusal(RefusalCode.UNUSED_VARIABLE, variables=", ".join(unused), extra={"variables": unused})


def variables_of(text: str) -> list[str]:
    """The #{변수} of a text or template, each once, in order."""
    return list(dict.fromkeys(VARIABLE.findall(text)))


def message_variables(recipient: Mapping[str, str], shared: Mapping[str, str]) -> dict[str, str]:
    """A message's template variables: its recipient's own (the name), then the send request's
    shared alimtalk_replacements. Planning renders the text with them and the pipeline sends
    them to Solapi with the same precedence, so the two always agree."""
    return {**recipient, **shared}


def check_text_encodes(draft: Draft) -> None:
    """Refuse a text that no recipient could receive by SMS/LMS: characters outside EUC-KR in
    the body, the shared variables or the subject. A student's name is checked per recipient."""
    if draft.mode == MessageMode.ALIMTALK:
        return  # AlimTalk is not limited to EUC-KR
    text = render(draft.source_text, {STUDENT_NAME: "", **draft.replacements})
    if draft.mode == MessageMode.SMS:
        text += draft.subject
    bad = unsupported_characters(text)
    if bad:
        raise Refusal(RefusalCode.UNSUPPORTED_CHARACTERS, characters=" ".join(bad), extra={"characters": bad})


def render(text: str, variables: Mapping[str, str]) -> str:
    return VARIABLE.sub(lambda m: str(variables[m.group(1)]), text)


def recipients(students: Iterable[StudentContact], send_to: str) -> Iterator[tuple[StudentContact, str, str]]:
    """(student, recipient kind, phone as stored) for everyone a send addresses, in student order."""
    for student in students:
        if send_to in (SendTo.STUDENT, SendTo.BOTH):
            yield student, RecipientKind.STUDENT, student.phone
        if send_to in (SendTo.PARENT, SendTo.BOTH):
            yield student, RecipientKind.PARENT, student.parent_phone


def _too_long(exc: TextTooLong) -> Refusal:
    code = RefusalCode.SUBJECT_TOO_LONG if exc.field == "subject" else RefusalCode.BODY_TOO_LONG
    return Refusal(code, length=exc.length, limit=exc.limit, extra={"bytes": exc.length, "limit": exc.limit})


class _Size(NamedTuple):
    """What every text of one byte count shares: type, fallback, bytes, subject, price."""

    message_type: str
    fallback_type: str
    bytes: int
    subject: str
    price: Decimal


class _Texts:
    """One draft's texts: each recipient's text, its type, size and price.

    The texts of a send differ only in the student's name, and a send has up to 10,000 of them.
    So the shared text is rendered, checked and counted once, and per recipient only the name
    is: EUC-KR encodes character by character, so a text's bytes are the shared part's plus
    the name's at each #{이름}, and its unsupported characters are the name's
    (check_text_encodes has refused a shared part SMS/LMS cannot carry). The SMS/LMS type
    depends on nothing but the byte count (and the draft's subject), so billing decides it
    once per count, from the first real text of that size; prices once per type.
    """

    def __init__(self, draft: Draft, prices: Mapping[str, Decimal]):
        self.draft, self.prices = draft, prices
        self.uses_alimtalk = draft.uses_alimtalk
        # The shared text cut at its name variables: a recipient's text is their name joined
        # between the pieces, what render() would make of it (shared values win over the name,
        # as in message_variables).
        self.pieces = [""]
        for i, part in enumerate(VARIABLE.split(draft.source_text)):
            if i % 2 == 0:
                self.pieces[-1] += part
            elif part == STUDENT_NAME and STUDENT_NAME not in draft.replacements:
                self.pieces.append("")
            else:
                self.pieces[-1] += str(draft.replacements[part])
        self.name_slots = len(self.pieces) - 1
        # AlimTalk alone is not limited to EUC-KR, and counts characters.
        self.shared_bytes = 0 if draft.mode == MessageMode.ALIMTALK else len("".join(self.pieces).encode("euc_kr"))
        self.subject = "" if self.uses_alimtalk else draft.subject
        self._name_bytes: dict[str, int | UnsupportedCharacters] = {}
        self._sizes: dict[int, _Size] = {}
        self._prices: dict[tuple[str, str], Decimal] = {}

    def text(self, name: str) -> str:
        return name.join(self.pieces)

    def size(self, text: str, name: str) -> "_Size":
        """The type, bytes, price (and subject, fallback) of `text`, this draft's text for
        `name`. Raises UnsupportedCharacters for a name SMS/LMS cannot carry, Refusal for the
        text itself. SMS/LMS texts of one byte count share all of it, decided once per count."""
        length = None
        if self.uses_alimtalk:
            # An AlimTalk counts characters, which the byte count does not tell: per text.
            try:
                length = alimtalk_length(text)
            except TextTooLong as exc:
                raise _too_long(exc) from None
        # AlimTalk alone is not limited to EUC-KR: its texts are of one kind whatever the name.
        body_bytes = 0 if self.draft.mode == MessageMode.ALIMTALK else (
            self.shared_bytes + (self.name_slots * self._bytes_of_name(name) if self.name_slots else 0))
        size = self._sizes.get(body_bytes)
        if size is None:
            size = self._sizes[body_bytes] = self._first_of_its_size(text)
        return size if length is None else size._replace(bytes=length)

    def _first_of_its_size(self, text: str) -> "_Size":
        try:
            if self.uses_alimtalk:
                fallback = ""
                if self.draft.mode == MessageMode.BOTH:
                    # Solapi sends the same text as SMS/LMS when Kakao cannot deliver it.
                    fallback = text_message_type(text, self.subject).message_type
                return _Size(MessageType.ATA, fallback, 0, "", self._price(MessageType.ATA, fallback))
            size = text_message_type(text, self.subject)
            return _Size(size.message_type, "", size.body_bytes, self.subject, self._price(size.message_type, ""))
        except TextTooLong as exc:
            raise _too_long(exc) from None

    def _price(self, message_type: str, fallback_type: str) -> Decimal:
        key = (message_type, fallback_type)
        if key not in self._prices:
            try:
                self._prices[key] = hold_amount(self.prices, message_type, fallback_type or None)
            except PriceNotConfigured as exc:
                raise Refusal(RefusalCode.PRICE_NOT_CONFIGURED, message_type=exc.message_type) from None
        return self._prices[key]

    def _bytes_of_name(self, name: str) -> int:
        known = self._name_bytes.get(name)
        if known is None:
            try:
                known = euckr_bytes(name)
            except UnsupportedCharacters as exc:
                known = exc
            self._name_bytes[name] = known
        if isinstance(known, UnsupportedCharacters):
            raise UnsupportedCharacters(known.characters)
        return known
