"""Array parameters go to PostgreSQL as one array literal string (project/sql.array_value): what
PostgreSQL reads back must be exactly the list, awkward strings and NULLs included."""

from decimal import Decimal

import pytest
from django.db import connection

from project.sql import array_value

pytestmark = pytest.mark.django_db

AWKWARD = ['"quoted"', "back\\slash", "NULL", "", " spaced ", "{braces}", "a,b", "학생 😀", "\\\"", None]


def _round_trip(values: list, db_type: str) -> list:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT unnest(%s::{db_type}[])", [array_value(values)])
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres
def test_strings_numbers_and_nulls_come_back_as_they_were_sent():
    assert _round_trip(AWKWARD, "text") == AWKWARD
    assert _round_trip([1, 2**62, None, 3], "bigint") == [1, 2**62, None, 3]
    assert _round_trip([Decimal("13"), Decimal("8.40"), 0], "numeric") == [Decimal("13"), Decimal("8.40"), 0]
    assert _round_trip([], "bigint") == []


def test_other_values_stay_a_list():
    """Booleans, dates, mixed kinds: psycopg adapts them as before."""
    for values in ([True, False], [1, "1"], [1.5]):
        assert array_value(values) == values
