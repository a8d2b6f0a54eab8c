"""Many rows in one statement: `INSERT … SELECT … FROM unnest(…)` on PostgreSQL, the ORM elsewhere.

`bulk_create` sends one VALUES tuple per row: a thousand rows are a thousand tuples for
Django to build and PostgreSQL to parse, and it cannot say which rows a conflict skipped.
One array per column is one parameter each, whatever the number of rows, and RETURNING
names exactly the rows written (measured for a chunk's holds, ledger rows and outcome rows:
412 ms through bulk_create against 58 ms with unnest; benchmarks/ledger_writes.py).

SQLite (the dev stack, `make test`) has no arrays: it takes the ORM path, which gives the
same rows and answers.
"""

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db import connection, models


def on_postgresql() -> bool:
    return connection.vendor == "postgresql"


# Values psycopg sends as they are: Django's get_db_prep_save adds nothing for these, and
# calling it for every value of a thousand rows costs more than the INSERT itself.
_SENT_AS_IS = {"AutoField", "BigAutoField", "BigIntegerField", "BooleanField", "CharField", "DecimalField",
               "ForeignKey", "IntegerField", "PositiveIntegerField", "SmallIntegerField", "TextField"}


def insert_ignoring_conflicts(model: type[models.Model], rows: Sequence[Mapping[str, Any]], *,
                              same: Mapping[str, Any] | None = None,
                              returning: Sequence[str] = ()) -> list[tuple]:
    """Insert `rows` (field name → value, the same fields in every row; `same`: the values
    every row shares, sent once), skipping each row a unique key already holds (ON CONFLICT
    DO NOTHING); return the `returning` fields of the rows actually inserted.

    Rows are inserted in the order given: callers that may race on the same keys pass them
    sorted by that key, so two statements wait for each other instead of deadlocking."""
    if not rows:
        return []
    same = dict(same or {})
    names = list(rows[0])
    if not on_postgresql():
        return _insert_with_orm(model, [{**row, **same} for row in rows], names, returning)
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in names]
    fixed = [model._meta.get_field(name) for name in same]
    columns = ", ".join(quote(f.column) for f in [*fields, *fixed])
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    constants = "".join(f", %s::{f.db_type(connection)}" for f in fixed)
    sql = (f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
           f"SELECT *{constants} FROM unnest({arrays}) ON CONFLICT DO NOTHING")
    if returning:
        sql += " RETURNING " + ", ".join(quote(model._meta.get_field(n).column) for n in returning)
    # In the order of the placeholders: the shared values (in the select list), then the arrays.
    params = [field.get_db_prep_save(value, connection) for field, value in zip(fixed, same.values(), strict=True)]
    params += [_column(field, [row[name] for row in rows]) for name, field in zip(names, fields, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(r) for r in cursor.fetchall()] if returning else []


def _column(field: models.Field, values: list) -> list:
    """One column's values as psycopg sends an array: of one type (it refuses a list mixing
    Decimal and int, as a money column's 0 next to 8.40 would be)."""
    kind = field.get_internal_type()
    if kind == "DecimalField":
        return [v if v is None or isinstance(v, Decimal) else Decimal(v) for v in values]
    if kind in _SENT_AS_IS:
        return values
    return [field.get_db_prep_save(v, connection) for v in values]


def _insert_with_orm(model, rows, names, returning) -> list[tuple]:
    """The same through the ORM. Inside the caller's transaction SQLite already serializes
    writers, so the rows found missing here are the rows this insert writes."""
    unique = next((f for f in model._meta.fields if f.unique and not f.primary_key and f.name in names), None)
    if unique is not None:
        present = set(model.objects.filter(**{f"{unique.name}__in": [r[unique.name] for r in rows]})
                      .values_list(unique.name, flat=True))
        rows = [r for r in rows if r[unique.name] not in present]
    objects = model.objects.bulk_create([model(**row) for row in rows], ignore_conflicts=unique is None)
    return [tuple(getattr(obj, name) for name in returning) for obj in objects] if returning else []
