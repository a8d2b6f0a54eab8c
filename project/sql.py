"""SQL that depends on the database vendor, for the few hot paths that need it.

`field__in=[…]` with 10,000 values is 10,000 parameters: Django prepares each one and psycopg
splits the statement at each placeholder, about 0.1 s of CPU per lookup before PostgreSQL sees
it. One array parameter says the same thing in one value.

Writing different values into many rows is the same story: Django's bulk_update builds a CASE
WHEN per field and row (50 rows of 9 fields: 450 expressions to resolve and compile, about
100 ms of CPU); on PostgreSQL one UPDATE … FROM unnest(one array per column) says it.
"""

from collections.abc import Collection, Sequence
from typing import Any

from django.db import connection, models
from django.db.models.expressions import RawSQL

# Below this, the plain parameter list is as cheap and reads better in logs.
LONG_LIST = 100


def in_values(values: Collection[Any], db_type: str) -> Collection[Any] | RawSQL:
    """The right-hand side of an `__in` lookup for `values`: on PostgreSQL, when the list is long,
    one `db_type[]` array parameter unnested in a subquery; otherwise the list itself.
    `db_type` is the column's PostgreSQL type (`bigint`, `text` …)."""
    if connection.vendor != "postgresql" or len(values) < LONG_LIST:
        return values
    return RawSQL(f"SELECT unnest(%s::{db_type}[])", (list(values),))


def update_rows(objects: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write `fields` of each of `objects` (all of one model) into its row, by primary key.
    Like bulk_update, it calls no save() and stamps no auto_now field: set those first."""
    if not objects:
        return
    model = type(objects[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objects, fields)
        return
    meta = model._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    arrays = [[column.get_db_prep_value(getattr(obj, column.attname), connection) for obj in objects]
              for column in columns]
    table, quote = meta.db_table, connection.ops.quote_name
    names = [quote(column.column) for column in columns]
    casts = ", ".join(f"%s::{column.cast_db_type(connection)}[]" for column in columns)
    assignments = ", ".join(f"{name} = given.{name}" for name in names[1:])
    sql = (f"UPDATE {quote(table)} SET {assignments} FROM unnest({casts}) AS given({', '.join(names)}) "
           f"WHERE {quote(table)}.{names[0]} = given.{names[0]}")
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
