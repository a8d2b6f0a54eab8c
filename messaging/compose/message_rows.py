"""Writing a send request's message rows: one `COPY` on PostgreSQL, `bulk_create` elsewhere.

The API writes one row per recipient inside the request, up to 10,000 of them. Through the ORM
each row is a model instance whose every field is prepared in Python, then bound as parameters
(about 2 s for 10,000 rows on PostgreSQL; issue 17). `COPY … FROM STDIN` streams the same values
as one statement, formatted by psycopg's C code (about a tenth of that). SQLite has no `COPY`
and keeps the ORM path. Both paths write the same values: each row's own come from
`_planned_rows`, every other column is its field's default (or the clock, for `created` and
`updated`), exactly what the model would have filled in.

A broadcast's messages that go out at once are written into their chunks (`chunk_id`), the
chunks created here in the same transaction: dispatch finds them ready, and the row is not
written again for it. A row is written twice on its way out, here and when Solapi accepts it
(issue 17; messaging/models.py, UNSENT_STATUSES). Small sends (the interactive queue) are
chunked by their dispatch, which groups them with their neighbours (messaging/pipeline/express.py);
deferred and scheduled messages by the dispatch that releases them when they are due.

The caller gets the new ids in the order of the planned messages (credit holds are keyed by
message id).
"""

import json
import re
import time
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

from django.conf import settings
from django.db import connection

from messaging.compose.planning import PlannedMessage
from messaging.models import Chunk, Message, MessageStatus, SendRequest
from messaging.pipeline.queues import INTERACTIVE_QUEUE
from project import clock

# Rows per INSERT on the ORM path (Django lowers it where the database needs, e.g. SQLite's parameter limit).
BATCH_SIZE = 1000
# The columns a message takes from its plan (and its request); every other one is its default.
# The first VARYING differ from recipient to recipient; a send's rows share a handful of
# combinations of the others, which COPY formats once each (_copy_text).
PLANNED_COLUMNS = ("student_id", "phone", "text", "variables", "tenant_id", "send_request_id", "recipient_kind",
                   "message_type", "fallback_type", "subject", "price", "status", "skip_reason", "not_before",
                   "retry_of_id", "chunk_id")
VARYING = 4


def write_messages(send_request: SendRequest, planned: Sequence[PlannedMessage]) -> list[int]:
    """Insert one row per planned message (skipped ones too, with their reason) and return
    their ids, in the order of `planned`. Call it inside the caller's transaction."""
    if not planned:
        return []
    if copies():
        # COPY's text format takes JSON as its text.
        return _copy(send_request, _planned_rows(send_request, planned, encode_json=_json_text))
    rows = _planned_rows(send_request, planned, encode_json=None)
    created = Message.objects.bulk_create([Message(**dict(zip(PLANNED_COLUMNS, row, strict=True))) for row in rows],
                                          batch_size=BATCH_SIZE)
    return [m.pk for m in created]


def copies() -> bool:
    """Whether this database writes the rows with COPY (PostgreSQL) rather than the ORM."""
    return connection.vendor == "postgresql"


def _planned_rows(send_request: SendRequest, planned: Sequence[PlannedMessage], *,
                  encode_json: Callable[[Any], str] | None) -> list[tuple]:
    """Each message's PLANNED_COLUMNS, in that order."""
    tenant_id, send_request_id = send_request.tenant_id, send_request.id
    skipped, pending = MessageStatus.SKIPPED.value, MessageStatus.PENDING.value
    encode = encode_json or (lambda value: value)
    return [(m.student_id, m.phone, m.text, encode(m.variables), tenant_id, send_request_id, m.recipient_kind,
             m.message_type, m.fallback_type, m.subject, m.price, skipped if m.skip_reason else pending,
             m.skip_reason, m.not_before, m.retry_of_id, chunk_id)
            for m, chunk_id in zip(planned, _chunks_of(send_request, planned), strict=True)]


def _chunks_of(send_request: SendRequest, planned: Sequence[PlannedMessage]) -> list[int | None]:
    """Each planned message's chunk, created now (a broadcast's messages that go out at once,
    MESSAGING_CHUNK_SIZE to a chunk, in the planned order, as dispatch would split them), or
    None (dispatch chunks it: messaging/pipeline/delivery.split_into_chunks)."""
    if send_request.queue == INTERACTIVE_QUEUE:
        return [None] * len(planned)
    due = [position for position, m in enumerate(planned) if not m.skip_reason and m.not_before is None]
    chunk_of: list[int | None] = [None] * len(planned)
    for chunk_id, positions in new_chunks(send_request, due):
        for position in positions:
            chunk_of[position] = chunk_id
    return chunk_of


def new_chunks(send_request: SendRequest, items: Sequence, first_index: int = 0) -> list[tuple[int, Sequence]]:
    """Chunks for `items` (a request's messages going out), MESSAGING_CHUNK_SIZE to a chunk in
    their order, created in one statement: [(chunk id, its items)]. The API's rows and the
    dispatch's split (messaging/pipeline/delivery.py) both chunk through here."""
    return new_chunks_of([(send_request, items, first_index)])


def new_chunks_of(requests: Sequence[tuple[SendRequest, Sequence, int]]) -> list[tuple[int, Sequence]]:
    """new_chunks for several requests at once, in one statement: [(request, its items, the
    index of its first new chunk)] -> [(chunk id, its items)], request after request. Small
    sends taken together into one Solapi group (messaging/pipeline/express.py) bring dozens."""
    size = settings.MESSAGING_CHUNK_SIZE
    planned = [(send_request, first_index + n, items[offset : offset + size])
               for send_request, items, first_index in requests
               for n, offset in enumerate(range(0, len(items), size))]
    chunks = Chunk.objects.bulk_create([Chunk(send_request=send_request, index=index)
                                        for send_request, index, _ in planned])
    return [(chunk.id, part) for chunk, (_, _, part) in zip(chunks, planned, strict=True)]


def _copy(send_request: SendRequest, rows: list[tuple]) -> list[int]:
    defaults = _defaults(exclude=PLANNED_COLUMNS)
    tail = tuple(defaults.values())
    table = connection.ops.quote_name(Message._meta.db_table)
    names = ", ".join(connection.ops.quote_name(Message._meta.get_field(name).column)
                      for name in (*PLANNED_COLUMNS, *defaults))
    statement = f"COPY {table} ({names}) FROM STDIN"
    with connection.cursor() as cursor:
        started = time.monotonic()
        # Django's cursor wrapper has no copy(); the psycopg cursor underneath does.
        with cursor.cursor.copy(statement) as copy:
            copy.write(_copy_text(rows, tail))
        if connection.queries_logged:
            # Recorded as Django records every statement it runs (DEBUG, CaptureQueriesContext).
            connection.queries_log.append({"sql": f"{statement} -- {len(rows)} rows",
                                           "time": f"{time.monotonic() - started:.3f}"})
        # The identity column hands out increasing ids within a session, in the order COPY
        # reads the rows, and this request has no other rows: sorted ids are the rows' order.
        cursor.execute(f"SELECT id FROM {table} WHERE send_request_id = %s ORDER BY id", [send_request.id])
        ids = [row[0] for row in cursor.fetchall()]
    if len(ids) != len(rows):
        raise RuntimeError(f"send request {send_request.id}: wrote {len(rows)} message rows, found {len(ids)}")
    return ids


# COPY's text format: a tab between columns, \N for NULL, and in a value a backslash, tab,
# newline or carriage return escaped with a backslash.
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def _copy_text(rows: Sequence[tuple], tail: tuple) -> str:
    """The rows (PLANNED_COLUMNS, then `tail`, the same for every row) in COPY's text format.

    psycopg's write_row dumps every value of every row through its adapters (about 10 µs a
    row of 25 columns, 0.1 s for a 10,000-recipient send). Here only the VARYING columns are
    formatted per row; the rest of a row is one of a few combinations (kind, type, price,
    status, chunk …), formatted once each."""
    shared: dict[tuple, str] = {}
    lines = []
    for row in rows:
        rest = row[VARYING:]
        after = shared.get(rest)
        if after is None:
            after = shared[rest] = "".join(f"\t{_copy_value(value)}" for value in (*rest, *tail)) + "\n"
        student_id, phone, text, variables = row[:VARYING]
        # One search for the three (a JSON text has a backslash whenever it escapes something).
        if _COPY_SPECIAL.search(f"{phone}{text}{variables}"):
            phone, text, variables = (value.translate(_COPY_ESCAPES) for value in (phone, text, variables))
        lines.append(f"{_NULL if student_id is None else int(student_id)}\t{phone}\t{text}\t{variables}{after}")
    return "".join(lines)


def _copy_value(value: Any) -> str:
    """One value of the types a message row's columns take, as COPY's text format reads it."""
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, date):  # and datetime: ISO 8601, with its offset when aware
        return value.isoformat()
    raise TypeError(f"no COPY text for {type(value).__name__}")


def _json_text(value: Any) -> str:
    """json.dumps(value), faster for what a send's message carries: its recipient's name, one
    str → str. PostgreSQL keeps the parsed value (jsonb): only the value counts, not the spelling."""
    if type(value) is dict and len(value) == 1:
        ((key, item),) = value.items()
        if type(key) is str and type(item) is str:
            return f"{{{encode_basestring(key)}: {encode_basestring(item)}}}"
    return json.dumps(value, ensure_ascii=False)


def _defaults(*, exclude: Sequence[str]) -> dict[str, Any]:
    """Every other column's value as the model would fill it in: auto_now(_add) from the
    project clock, else the field's default, prepared for the database."""
    now = clock.now()
    values = {}
    for field in Message._meta.concrete_fields:
        if field.primary_key or field.attname in exclude:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        else:
            value = field.get_default()
        values[field.attname] = field.get_db_prep_save(value, connection)
    return values
