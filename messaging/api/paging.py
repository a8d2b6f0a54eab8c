"""One way to page a list: `?page=` (from 1) and `?page_size=` (at most MAX_PAGE_SIZE), and
one envelope: {"results", "page", "page_size", "total"}."""

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers

from messaging.selectors import MAX_PAGE_SIZE

DEFAULT_PAGE_SIZE = 50


class PageQuerySerializer(serializers.Serializer):
    """The paging part of a list's query string; lists add their filters to it."""

    page = serializers.IntegerField(min_value=1, max_value=1_000_000, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE)


def page_of(queryset: QuerySet, *, page: int, page_size: int) -> tuple[list[Any], int]:
    """(the rows of the page, the total). Past the last page: no rows, the same total."""
    total = queryset.count()
    offset = (page - 1) * page_size
    return (list(queryset[offset : offset + page_size]) if offset < total else []), total


def envelope(results: list, *, page: int, page_size: int, total: int) -> dict[str, Any]:
    return {"results": results, "page": page, "page_size": page_size, "total": total}


def page_serializer(name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The envelope's type in the OpenAPI schema, for one kind of item."""
    return type(name, (serializers.Serializer,), {
        "results": item(many=True),
        "page": serializers.IntegerField(),
        "page_size": serializers.IntegerField(),
        "total": serializers.IntegerField(help_text="Items over every page."),
    })
