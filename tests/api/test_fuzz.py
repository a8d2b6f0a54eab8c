"""A fuzz pass over the API as its OpenAPI schema describes it: no input gets a 500.

Request bodies are drawn from the schema served at /api/schema/ (so a field added to
the serializer is fuzzed without touching this file), at three levels: clean values
that get far (this academy's students, Hangul text), values of the right type with any
character in them (NUL and lone surrogates arrive as JSON escapes from any client),
and values of the wrong type. Headers name foreign academies and replay keys. Every
answer must be below 500; errors must have the API's error shape; accepted sends and
previews must match their documented response schema.

Examples are derandomized so CI is repeatable; API_FUZZ_EXAMPLES=3000 explores further
with fresh random inputs.
"""

import json
import os
import string

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from harness.academies import TEMPLATE_ID, make_academy, make_students, new_phone
from tests.api.conftest import client_for, send_body

pytestmark = pytest.mark.django_db

EXPLORE = int(os.environ.get("API_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXPLORE or 600, derandomize=not EXPLORE, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Any character, lone surrogates included (hypothesis leaves them out unless asked).
ANY_CHARACTER = st.characters(exclude_categories=())
CLEAN_CHARACTER = (st.characters(min_codepoint=0x20, max_codepoint=0x7E)
                   | st.characters(min_codepoint=0xAC00, max_codepoint=0xAC40) | st.just("\n"))
# What a real server can hand over in a header: HTTP carries latin-1, without control characters.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=120)
# Any JSON value, for fields given the wrong type.
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(ANY_CHARACTER, max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(ANY_CHARACTER, max_size=5), inner, max_size=3),
    max_leaves=6,
)
# Texts that get far into planning, or to its edges: variables, Hangul at the SMS/LMS and
# LMS limits, blanks, characters outside EUC-KR.
LIKELY_TEXT = st.sampled_from(
    ["#{이름} 학생 안내입니다.", "#{이름}#{반}", "가" * 45, "가" * 46, "가" * 1000, "가" * 1001, "", "  ",
     "(광고) 할인", "#{이름", "}#{", "#{}", "😀", "똠", "\x00", "\ud800"]
)
# Integers at the edges of what databases and Python's int parsing hold.
EDGE_INTEGERS = st.sampled_from([0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 10**20, -(2**63)])


@pytest.fixture
def openapi(db) -> dict:
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


class SchemaStrategies:
    """Hypothesis strategies for the schema's request bodies, and the response check."""

    def __init__(self, openapi: dict, student_ids: list[int]):
        self.openapi = openapi
        self.components = openapi["components"]["schemas"]
        self.student_ids = student_ids

    def resolve(self, schema: dict) -> dict:
        while "$ref" in schema or "allOf" in schema:
            if "$ref" in schema:
                schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
            else:
                schema = {**schema["allOf"][0], **{k: v for k, v in schema.items() if k != "allOf"}}
        return schema

    def valid(self, schema: dict, name: str = "", *, clean: bool, mixed: bool = False) -> st.SearchStrategy:
        """A value the schema allows: with `clean` text, or any characters; `mixed` gives an
        object's fields a value of any type now and then."""
        schema = self.resolve(schema)
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        kind = schema.get("type")
        if kind == "integer":
            integers = st.integers(schema.get("minimum"), schema.get("maximum")) | EDGE_INTEGERS.filter(
                lambda i: schema.get("minimum", i) <= i <= schema.get("maximum", i))
            return st.sampled_from(self.student_ids) | integers if name == "student_ids" else integers
        if kind == "string":
            size = min(schema.get("maxLength", 300), 300)
            text = st.text(CLEAN_CHARACTER, max_size=size) if clean else LIKELY_TEXT | st.text(ANY_CHARACTER,
                                                                                              max_size=size)
            return st.sampled_from([TEMPLATE_ID, "TPL_NOPE"]) | text if name == "template_id" else text
        if kind == "boolean":
            return st.booleans()
        if kind == "array":
            items = self.valid(schema["items"], name, clean=clean)
            return st.lists(items, max_size=min(schema.get("maxItems", 6), 6))
        if kind == "object" and "properties" in schema:
            required = set(schema.get("required", []))
            fields = {k: self.valid(v, k, clean=clean) | ANY_JSON if mixed else self.valid(v, k, clean=clean)
                      for k, v in schema["properties"].items()}
            return st.fixed_dictionaries({k: v for k, v in fields.items() if k in required},
                                         optional={k: v for k, v in fields.items() if k not in required})
        if kind == "object":
            values = self.valid(schema.get("additionalProperties") or {"type": "string"}, clean=clean)
            keys = st.sampled_from(["반", "시간", "이름"]) | (
                st.text(CLEAN_CHARACTER, max_size=10) if clean
                else st.sampled_from(["", "\x00", "\ud800", "{", "}"]) | st.text(ANY_CHARACTER, max_size=10))
            return st.dictionaries(keys, values, max_size=3)
        return ANY_JSON

    def plausible(self, schema: dict, *, clean: bool) -> st.SearchStrategy:
        """This academy's students and a text, the rest as the schema allows. Without it nearly
        every request stops at "not found" or "empty body" and nothing deeper runs."""
        joined = st.builds("#{이름}".join, st.lists(st.text(CLEAN_CHARACTER if clean else ANY_CHARACTER,
                                                            max_size=60), max_size=3))
        return st.builds(lambda body, ids, text: {**body, "student_ids": ids, "body": text},
                         self.valid(schema, clean=clean),
                         st.lists(st.sampled_from(self.student_ids), min_size=1, max_size=6),
                         LIKELY_TEXT | joined)

    def one_dirty_field(self, schema: dict) -> st.SearchStrategy:
        """A clean, plausible body with one field given any characters: a fault in one field
        is not hidden behind another field's validation error."""
        fields = self.resolve(schema)["properties"]
        return st.sampled_from(sorted(fields)).flatmap(lambda name: st.builds(
            lambda body, value: {**body, name: value}, self.plausible(schema, clean=True),
            self.valid(fields[name], name, clean=False)))

    def request_body(self, path: str) -> st.SearchStrategy:
        schema = self.openapi["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        extra_fields = st.dictionaries(st.text(max_size=8), ANY_JSON, max_size=2)
        return st.one_of(
            self.plausible(schema, clean=True),
            self.plausible(schema, clean=True),
            self.one_dirty_field(schema),
            self.one_dirty_field(schema),
            self.plausible(schema, clean=False),
            self.plausible(schema, clean=False),
            self.valid(schema, clean=False, mixed=True),
            st.builds(lambda body, extra: {**extra, **body}, self.valid(schema, clean=False), extra_fields),
            ANY_JSON,
        )

    def check_response(self, response, path: str, method: str) -> None:
        assert response.status_code < 500, response.content[:2000]
        body = response.json()
        if response.status_code >= 400:
            assert {"code", "detail", "messages"} <= set(body), body
            assert set(body["messages"]) == {"ko", "en"}, body
            return
        documented = self.openapi["paths"][path][method]["responses"][str(response.status_code)]
        schema = documented["content"]["application/json"]["schema"]
        jsonschema.validate(body, as_json_schema({**schema, "components": self.openapi["components"]}))


def as_json_schema(schema):
    """OpenAPI 3.0 writes a nullable field as `nullable: true`, which JSON Schema spells as
    a "null" type; without this every documented null fails validation."""
    if isinstance(schema, list):
        return [as_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: as_json_schema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable") and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    elif schema.get("nullable") and "allOf" in converted:
        # A nullable nested object: drf-spectacular writes {allOf: [{$ref}], nullable: true}.
        return {"anyOf": [{"type": "null"}, converted]}
    return converted


@pytest.fixture
def fuzz_world(academy, other_academy, openapi):
    """Academy A's students (one without a phone, two siblings sharing one) and one of B's."""
    tenant = academy.tenant
    extra = [*make_students(tenant, 1, parent_phone=""), *make_students(tenant, 2, parent_phone=new_phone())]
    ids = [*academy.student_ids, *(s.id for s in extra), other_academy.student_ids[0]]
    return SchemaStrategies(openapi, ids)


def tenant_header(academy, other_academy) -> st.SearchStrategy:
    """Mostly none or the user's own academy (so requests get further), sometimes anything."""
    return st.one_of(st.just(None), st.just(None), st.just(academy.tenant.slug), st.just(other_academy.tenant.slug),
                     HEADER_TEXT)


def form_encodable(body) -> bool:
    """Whether multipart can carry it: flat strings, numbers and lists of them, no NUL or surrogates."""
    if not isinstance(body, dict):
        return False
    values = [i for v in body.values() for i in (v if isinstance(v, list) else [v])]
    return all(isinstance(v, str | int) and not isinstance(v, bool) for v in values) and not any(
        "\x00" in str(v) or any(0xD800 <= ord(c) <= 0xDFFF for c in str(v)) for v in values)


@pytest.mark.parametrize("path", ["/api/v1/messages/send", "/api/v1/messages/preview"])
def test_no_generated_send_or_preview_gets_a_500(fuzz_world, academy, other_academy, broker, path):
    client = client_for(academy.user)

    @FUZZ
    @given(fuzz_world.request_body(path), tenant_header(academy, other_academy),
           st.one_of(st.just(None), st.sampled_from(["key-1", "key-2"]), HEADER_TEXT),
           st.sampled_from(["json", "json", "json", "multipart"]))
    def check(body, tenant, key, encoding):
        headers = {k: v for k, v in {"X-Tenant": tenant, "Idempotency-Key": key}.items() if v is not None}
        if encoding == "multipart" and form_encodable(body):
            response = client.post(path, body, format="multipart", headers=headers)
        else:
            # Escaped JSON (ensure_ascii), as any JSON client sends NUL and lone surrogates.
            response = client.post(path, json.dumps(body), content_type="application/json", headers=headers)
        fuzz_world.check_response(response, path, "post")

    check()


def test_no_generated_progress_query_gets_a_500(fuzz_world, academy, other_academy, broker):
    client = client_for(academy.user)
    own = client.post("/api/v1/messages/send", send_body(academy.student_ids, body="안내"), format="json")
    foreign = client_for(other_academy.user).post("/api/v1/messages/send",
                                                  send_body(other_academy.student_ids, body="안내"), format="json")
    ids = [own.json()["id"], foreign.json()["id"]]
    query_value = st.integers() | EDGE_INTEGERS | st.text(string.printable, max_size=8)

    @FUZZ
    @given(
        st.sampled_from(ids) | st.integers(min_value=0) | EDGE_INTEGERS.filter(lambda i: i >= 0),
        st.dictionaries(st.sampled_from(["page", "page_size", "other"]), query_value, max_size=3),
        tenant_header(academy, other_academy),
    )
    def check(send_request_id, query, tenant):
        headers = {"X-Tenant": tenant} if tenant is not None else {}
        path = f"/api/v1/messages/send-requests/{send_request_id}"
        response = client.get(path, {k: str(v) for k, v in query.items()}, headers=headers)
        fuzz_world.check_response(response, "/api/v1/messages/send-requests/{send_request_id}", "get")

    check()


def test_no_generated_credit_query_gets_a_500(fuzz_world, academy, other_academy):
    clients = [client_for(academy.user), APIClient(), client_for(make_academy("fuzz-c", students=0).user)]

    @settings(FUZZ, max_examples=min(FUZZ.max_examples, 50))
    @given(st.sampled_from(clients), tenant_header(academy, other_academy))
    def check(client, tenant):
        response = client.get("/api/v1/credits", headers={"X-Tenant": tenant} if tenant is not None else {})
        fuzz_world.check_response(response, "/api/v1/credits", "get")

    check()


LIST_QUERIES = {
    "/api/v1/students": ["search", "class_id", "grade", "has_parent_phone", "consent"],
    "/api/v1/messages/send-requests": ["status", "purpose", "created_from", "created_to"],
    "/api/v1/messages/send-requests/{send_request_id}/messages": ["status", "failure_class"],
}


@pytest.mark.parametrize("path", sorted(LIST_QUERIES))
def test_no_generated_list_query_gets_a_500(fuzz_world, academy, other_academy, broker, path):
    """The console's lists: any filter and paging value, answered in their documented shape or refused."""
    client = client_for(academy.user)
    own = client.post("/api/v1/messages/send", send_body(academy.student_ids, body="안내"), format="json").json()["id"]
    query_value = (st.integers() | EDGE_INTEGERS | st.text(string.printable, max_size=12)
                   | st.sampled_from(["true", "false", "given", "cancelled", "2026-12-01", "9999-99-99", "가"]))
    names = [*LIST_QUERIES[path], "page", "page_size", "other"]

    @settings(FUZZ, max_examples=min(FUZZ.max_examples, 200))
    @given(st.dictionaries(st.sampled_from(names), query_value, max_size=4), tenant_header(academy, other_academy))
    def check(query, tenant):
        headers = {"X-Tenant": tenant} if tenant is not None else {}
        response = client.get(path.replace("{send_request_id}", str(own)), {k: str(v) for k, v in query.items()},
                              headers=headers)
        fuzz_world.check_response(response, path, "get")

    check()
