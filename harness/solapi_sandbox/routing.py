"""Requests, replies and the route table shared by the Solapi API and the control plane."""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from .errors import SolapiError, validation_error

# The operation name of /_sandbox/ routes: no auth, no faults, not in the request log.
CONTROL_OPERATION = "control"


@dataclass
class Reply:
    status: int
    body: Any  # JSON-serialisable, or str for a plain-text reply
    headers: dict[str, str] = field(default_factory=dict)  # beyond Content-Type and Content-Length

    @classmethod
    def ok(cls, body: Any) -> "Reply":
        return cls(HTTPStatus.OK, body)

    @classmethod
    def error(cls, error: SolapiError) -> "Reply":
        return cls(error.status, error.body())

    def encode(self) -> tuple[bytes, str]:
        """The body bytes and their Content-Type."""
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body, ensure_ascii=False).encode(), "application/json; charset=utf-8"


@dataclass
class Call:
    """One request, as handlers see it."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    raw_body: bytes
    headers: Any  # email.message.Message from http.server: case-insensitive .get()
    wait_latency: Callable[[], None] = field(default=lambda: None)

    def json(self) -> Any:
        if not self.raw_body.strip():
            return None
        try:
            return json.loads(self.raw_body)
        except ValueError as error:
            raise validation_error(f"요청 본문이 올바른 JSON이 아닙니다: {error}") from None

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; an empty body counts as {}."""
        body = self.json()
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise validation_error("요청 본문은 JSON 객체여야 합니다.")
        return body


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str  # an Operation for Solapi routes, CONTROL_OPERATION for /_sandbox/
    handler: Handler


def route(method: str, path_template: str, operation: str, handler: Handler) -> Route:
    """A route from a template such as "/messages/v4/groups/{group_id}/send"."""
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path_template)
    return Route(method, re.compile(f"^{regex}$"), operation, handler)


def match(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for candidate in routes:
        if candidate.method == method and (found := candidate.pattern.match(path)):
            return candidate, found.groupdict()
    return None
