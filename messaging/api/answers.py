"""Answers written from the selectors' plain dicts, not through their serializers.

The serializers in messaging/api/serializers.py document these answers (the OpenAPI schema); on
the busiest reads, the status URL and the credits, building each field through them was a fifth to
a third of the request's CPU (docs/benchmarks.md, "Everyday load"). The selectors' values are
JSON-ready already (amounts as strings, counts as ints) except times, which are written here as
DRF's DateTimeField writes them: ISO 8601 in the current time zone (Seoul), microseconds kept.
Tests compare each answer with its serializer's (tests/api/test_answers.py).
"""

from datetime import datetime
from typing import Any

from rest_framework.fields import DateTimeField

_TIME = DateTimeField()


def with_api_times(value: Any) -> Any:
    """`value` (dicts, lists, scalars) with every datetime in it written as the API writes times."""
    if isinstance(value, datetime):
        return _TIME.to_representation(value)
    if isinstance(value, dict):
        return {key: with_api_times(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_api_times(item) for item in value]
    return value
