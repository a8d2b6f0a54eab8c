"""Request body parsers: DRF's, with deep nesting answered as a parse error."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """A body nested deeper than Python's parser goes (`[[[[…`, a few KB) raises
    RecursionError, which DRF does not catch: a 500. Here it is `invalid_request`."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
