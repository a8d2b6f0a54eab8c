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
from typing import Any

from django.db import connection, models


def on_postgresql() -> bool:
    return connection.vendor == "postgresql"


def insert_ignoring_conflicts(model: type[models.Model], rows: Sequence[Mapping[str, Any]], *,
                              returning: Sequence[str] = ()) -> list[tuple]:
    """Insert `rows` (field name → value, the same fields in every row), skipping each one
    that a unique key already holds (ON CONFLICT DO NOTHING), and return the `returning`
    fields of the rows actually inserted, in the order given.

    Rows are inserted in the order given: callers that may race on the same keys pass them
    sorted by that key, so two statements wait for each other instead of deadlocking."""
    if not rows:
        return []
    names = list(rows[0])
    if not on_postgresql():
        return _insert_with_orm(model, rows, names, returning)
    fields = [model._meta.get_field(name) for name in names]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    sql = (f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns}) "
           f"SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING")
    if returning:
        sql += " RETURNING " + ", ".join(connection.ops.quote_name(model._meta.get_field(n).column)
                                         for n in returning)
    params = [[field.get_db_prep_save(row[name], connection) for row in rows]
              for name, field in zip(names, fields, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(r) for r in cursor.fetchall()] if returning else []


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
