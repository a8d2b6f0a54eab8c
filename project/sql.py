"""SQL that depends on the database vendor, for the few hot paths that need it.

`field__in=[…]` with 10,000 values is 10,000 parameters: Django prepares each one and psycopg
splits the statement at each placeholder, about 0.1 s of CPU per lookup before PostgreSQL sees
it. One array parameter says the same thing in one value.

Writing different values into many rows is the same story: Django's bulk_update builds a CASE
WHEN per field and row (50 rows of 9 fields: 450 expressions to resolve and compile, about
100 ms of CPU); on PostgreSQL one UPDATE … FROM unnest(one array per column) says it.

Inserting many rows is the same again: `bulk_create` sends one VALUES tuple per row and cannot
say which rows a conflict skipped. `INSERT … SELECT … FROM unnest(…) ON CONFLICT DO NOTHING
RETURNING` sends one array per column and names exactly the rows written (a chunk's holds,
ledger rows and outcome rows: 412 ms through bulk_create against 58 ms with unnest; the credit
write path, benchmarks/ledger_writes.py). SQLite (the dev stack, `make test`) takes the ORM
path, which gives the same rows and answers.
"""

from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
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
    return RawSQL(f"SELECT unnest(%s::{db_type}[])", (array_value(list(values)),))


def array_value(values: list[Any]) -> list[Any] | str:
    """An array parameter's value: of numbers or strings, PostgreSQL's array literal text
    (`{1,2}`, `{"a","b"}`), else the list. psycopg quotes a list item by item in Python (about
    20 ms for 10,000 ids; the statement casts it: `%s::bigint[]`), one string in C."""
    kinds = set(map(type, values))
    if kinds <= {int, Decimal}:
        return "{" + ",".join(map(str, values)) + "}"
    if kinds <= {int, Decimal, type(None)}:
        return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"
    if kinds <= {str, type(None)}:
        # Every string quoted (so "NULL" and "" stay strings), its backslashes and quotes escaped.
        return "{" + ",".join("NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                              for v in values) + "}"
    return values


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
    arrays = [array_value([column.get_db_prep_value(getattr(obj, column.attname), connection) for obj in objects])
              for column in columns]
    table, quote = meta.db_table, connection.ops.quote_name
    names = [quote(column.column) for column in columns]
    casts = ", ".join(f"%s::{column.cast_db_type(connection)}[]" for column in columns)
    assignments = ", ".join(f"{name} = given.{name}" for name in names[1:])
    sql = (f"UPDATE {quote(table)} SET {assignments} FROM unnest({casts}) AS given({', '.join(names)}) "
           f"WHERE {quote(table)}.{names[0]} = given.{names[0]}")
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)


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
    return _insert(model, rows, same=same, returning=returning, ignore_conflicts=True)


def insert_rows(model: type[models.Model], rows: Sequence[Mapping[str, Any]], *,
                same: Mapping[str, Any] | None = None) -> None:
    """Insert `rows` as insert_ignoring_conflicts does, for rows no unique key can hold yet
    (a conflict raises IntegrityError). PostgreSQL's conflict check and the rows sent back cost
    about a third of such an INSERT (30 ms of 80 for 10,000 holds)."""
    _insert(model, rows, same=same, returning=(), ignore_conflicts=False)


def _insert(model: type[models.Model], rows: Sequence[Mapping[str, Any]], *, same: Mapping[str, Any] | None,
            returning: Sequence[str], ignore_conflicts: bool) -> list[tuple]:
    if not rows:
        return []
    same = dict(same or {})
    names = list(rows[0])
    if not on_postgresql():
        if not ignore_conflicts:
            model.objects.bulk_create([model(**row, **same) for row in rows])
            return []
        return _insert_with_orm(model, [{**row, **same} for row in rows], names, returning)
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in names]
    fixed = [model._meta.get_field(name) for name in same]
    columns = ", ".join(quote(f.column) for f in [*fields, *fixed])
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    constants = "".join(f", %s::{f.db_type(connection)}" for f in fixed)
    sql = (f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
           f"SELECT *{constants} FROM unnest({arrays})")
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(quote(model._meta.get_field(n).column) for n in returning)
    # In the order of the placeholders: the shared values (in the select list), then the arrays.
    params = [field.get_db_prep_save(value, connection) for field, value in zip(fixed, same.values(), strict=True)]
    params += [array_value(_column(field, [row[name] for row in rows]))
               for name, field in zip(names, fields, strict=True)]
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
