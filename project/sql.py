"""SQL that depends on the database vendor, for the few hot paths that need it.

`field__in=[…]` with 10,000 values is 10,000 parameters: Django prepares each one and psycopg
splits the statement at each placeholder, about 0.1 s of CPU per lookup before PostgreSQL sees
it. One array parameter says the same thing in one value.
"""

from collections.abc import Collection
from typing import Any

from django.db import connection
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
