"""The Solapi adapter over real HTTP against the sandbox: every error class is produced by
the sandbox on the wire and comes back as its typed error, with the HTTP status, Solapi's
errorCode and whether the request may have reached Solapi."""

import dataclasses
import json
from decimal import Decimal

import pytest

from harness.ports import free_port
from harness.solapi_sandbox.ledger import Ledger, RequestRecord
from harness.waiting import wait_until
from messaging.failures import FailureClass
from messaging.solapi import client as client_module
from messaging.solapi.client import (
    MAX_MESSAGES_PER_REQUEST,
    OutgoingMessage,
    SolapiClient,
    build_client,
    our_message_id,
)
from messaging.solapi.errors import (
    SolapiAccountBlockedError,
    SolapiAuthError,
    SolapiClockSkewError,
    SolapiConnectionError,
    SolapiPlatformBalanceError,
    SolapiRateLimited,
    SolapiRejectedError,
    SolapiServerError,
    SolapiTimeout,
    parse_retry_after,
)
from tests.solapi.conftest import API_KEY, API_SECRET, SENDER

READ_TIMEOUT = 1.0


@pytest.fixture
def solapi(sandbox) -> SolapiClient:
    return build_client(base_url=sandbox.url, api_key=API_KEY, api_secret=API_SECRET, read_timeout=READ_TIMEOUT)


def _messages(count: int = 3, start: int = 1) -> list[OutgoingMessage]:
    return [OutgoingMessage(message_id=i, to=f"010{i:08d}", sender=SENDER, text="안내입니다", message_type="SMS")
            for i in range(start, start + count)]


def _send(solapi: SolapiClient, messages: list[OutgoingMessage]):
    group_id = solapi.create_group()
    registered = solapi.add_messages(group_id, messages)
    return group_id, registered, solapi.send_group(group_id)


def test_the_group_flow_sends_each_message_once_and_results_are_plain_data(solapi, sandbox):
    group_id, registered, sent = _send(solapi, _messages())

    assert [(r.message_id, r.outcome.code, r.outcome.failure_class) for r in registered] == [
        (1, "2000", None), (2, "2000", None), (3, "2000", None)]
    assert (sent.group_id, sent.already_sent) == (group_id, False)
    assert sandbox.sends_per_message_id() == {"1": 1, "2": 1, "3": 1}
    # Nothing pydantic leaves the adapter: results survive a JSON round trip (Celery results).
    json.dumps([dataclasses.asdict(r) for r in registered] + [dataclasses.asdict(sent)])


def test_sending_the_same_group_again_reads_409_as_already_sent(solapi, sandbox):
    group_id, _, _ = _send(solapi, _messages())

    again = solapi.send_group(group_id)

    assert again.already_sent is True
    assert sandbox.sends_per_message_id() == {"1": 1, "2": 1, "3": 1}


def test_a_partial_failure_classifies_each_refused_message(solapi, sandbox):
    sandbox.set_recipient_outcome("01000000002", stage="register", code="3010")
    sandbox.set_recipient_outcome("01000000003", stage="register", code="1061")

    _, registered, _ = _send(solapi, _messages())

    assert [(r.message_id, r.outcome.failure_class) for r in registered] == [
        (1, None), (2, FailureClass.RECIPIENT_INVALID), (3, FailureClass.RECIPIENT_OPTED_OUT)]
    assert sandbox.sends_per_message_id() == {"1": 1}


def test_an_unregistered_sender_is_a_1062_per_message_not_an_http_error(solapi, sandbox):
    sandbox.unregister_sender(SENDER)

    registered = solapi.add_messages(solapi.create_group(), _messages(2))

    assert {(r.outcome.code, r.outcome.failure_class) for r in registered} == {
        ("1062", FailureClass.SENDER_UNREGISTERED)}


@pytest.mark.parametrize(("code", "error_type"),
                         [("1030", SolapiPlatformBalanceError), ("2063", SolapiAccountBlockedError)])
def test_a_per_message_refusal_about_our_account_raises_the_platform_error(solapi, sandbox, code, error_type):
    """Nobody's message is at fault when our Solapi account cannot send: the adapter says
    so with the platform error, not with a refused message."""
    sandbox.set_recipient_outcome("01000000002", stage="register", code=code)

    with pytest.raises(error_type) as raised:
        solapi.add_messages(solapi.create_group(), _messages())

    assert (raised.value.error_code, raised.value.ambiguous) == (code, False)
    assert sandbox.sends_per_message_id() == {}


def test_group_messages_report_our_ids_and_their_status(solapi, sandbox):
    group_id, _, _ = _send(solapi, _messages())
    sandbox.wait_for_reports()

    results = solapi.get_group_messages(group_id)

    assert sorted((r.message_id, r.outcome.code) for r in results) == [(1, "4000"), (2, "4000"), (3, "4000")]


def test_group_messages_are_read_page_after_page_to_the_last(solapi, sandbox, monkeypatch):
    monkeypatch.setattr(client_module, "GROUP_MESSAGES_PAGE_LIMIT", 2)
    group_id, _, _ = _send(solapi, _messages(5))

    results = solapi.get_group_messages(group_id)

    assert sorted(r.message_id for r in results) == [1, 2, 3, 4, 5]
    pages = [r.path for r in sandbox.request_log if r.operation == "get_group_messages"]
    assert len(pages) == 3


def test_a_group_tells_its_fallbacks_and_what_solapi_billed(solapi, sandbox):
    sandbox.set_recipient_outcome("01000000001", fallback=True)
    sandbox.set_fallback_signal("replacement")
    alimtalk = [dataclasses.replace(m, message_type="ATA", pf_id="KA01PF", template_id="TPL", disable_sms=False)
                for m in _messages(2)]
    group_id, _, _ = _send(solapi, alimtalk)
    assert sandbox.wait_for_reports(timeout=5)

    group = solapi.get_group(group_id)
    listed = {r.message_id: (r.message_type, r.replacement) for r in solapi.get_group_messages(group_id)}

    assert (group.status, group.sent_replacement, group.billed) == ("COMPLETE", 1, Decimal("22"))
    assert listed == {1: ("ATA", True), 2: ("ATA", False)}


def test_one_pooled_connection_serves_many_calls(solapi, sandbox):
    for _ in range(5):
        solapi.create_group()

    pool = solapi._http._transport._pool
    assert len(pool.connections) == 1


def test_more_than_solapis_limit_is_refused_before_any_call(solapi, sandbox):
    with pytest.raises(ValueError, match="10000"):
        solapi.add_messages("G", _messages(MAX_MESSAGES_PER_REQUEST + 1))
    assert sandbox.request_log == []


# --- every error class, produced by the sandbox over HTTP -----------------------------------


@pytest.mark.parametrize(("break_it", "error_type", "status", "code"), [
    (lambda sb: sb.set_credentials(api_key="OTHER"), SolapiAuthError, 403, "InvalidApiKey"),
    (lambda sb: sb.set_credentials(api_secret="other-secret"), SolapiAuthError, 403, "SignatureDoesNotMatch"),
    (lambda sb: sb.set_credentials(api_key="OTHER", auth_status=401), SolapiAuthError, 401, "InvalidApiKey"),
    (lambda sb: sb.set_clock_offset(20 * 60), SolapiClockSkewError, 403, "RequestTimeTooSkewed"),
    (lambda sb: sb.set_platform_balance_exhausted(True), SolapiPlatformBalanceError, 402, "NotEnoughBalance"),
    (lambda sb: sb.fail_next("send_group", action="429"), SolapiRateLimited, 429, "TooManyRequests"),
], ids=["bad-key", "bad-secret", "401-gateway", "clock-skew", "platform-balance", "rate-limited"])
def test_a_refusal_that_provably_sent_nothing_is_typed_and_not_ambiguous(solapi, sandbox, break_it, error_type,
                                                                        status, code):
    group_id = solapi.create_group()
    solapi.add_messages(group_id, _messages())
    break_it(sandbox)

    with pytest.raises(error_type) as raised:
        solapi.send_group(group_id)

    assert (raised.value.http_status, raised.value.error_code, raised.value.ambiguous) == (status, code, False)
    assert sandbox.accepted_total == 0


@pytest.mark.parametrize("plain_text", [False, True])
def test_a_5xx_is_a_server_error_that_may_have_reached_solapi(solapi, sandbox, plain_text):
    sandbox.fail_next("create_group", action="5xx", status=502, plain_text=plain_text)

    with pytest.raises(SolapiServerError) as raised:
        solapi.create_group()

    assert (raised.value.http_status, raised.value.ambiguous) == (502, True)


def test_accept_then_timeout_is_an_ambiguous_timeout_and_the_resend_is_already_sent(solapi, sandbox):
    group_id = solapi.create_group()
    solapi.add_messages(group_id, _messages())
    sandbox.fail_next("send_group", action="accept_then_timeout", hang_seconds=READ_TIMEOUT + 2)

    with pytest.raises(SolapiTimeout) as raised:
        solapi.send_group(group_id)
    wait_until(lambda: sandbox.accepted_total == 3, what="the timed-out send to be accepted")

    assert raised.value.ambiguous is True
    assert solapi.send_group(group_id).already_sent is True
    assert sandbox.sends_per_message_id() == {"1": 1, "2": 1, "3": 1}


def test_a_dropped_connection_is_a_connection_error_that_may_have_reached_solapi(solapi, sandbox):
    sandbox.fail_next("create_group", action="drop")

    with pytest.raises(SolapiConnectionError) as raised:
        solapi.create_group()

    assert raised.value.ambiguous is True


def test_a_refused_connection_provably_reached_nothing(sandbox):
    closed = build_client(base_url=f"http://127.0.0.1:{free_port()}", api_key=API_KEY, api_secret=API_SECRET)

    with pytest.raises(SolapiConnectionError) as raised:
        closed.create_group()

    assert raised.value.ambiguous is False


def test_a_slow_answer_is_a_read_timeout(solapi, sandbox):
    sandbox.set_latency(ms=(READ_TIMEOUT + 1) * 1000, operation="create_group")

    with pytest.raises(SolapiTimeout):
        solapi.create_group()


@pytest.mark.parametrize(("call", "status", "code"), [
    (lambda c: c.get_group("G4V_NO_SUCH_GROUP"), 404, "ResourceNotFound"),
    (lambda c: c.add_messages(_sent_group(c), _messages(1, start=9)), 400, "InvalidGroupStatus"),
], ids=["unknown-group", "add-to-a-sent-group"])
def test_any_other_refusal_is_a_rejected_request(solapi, sandbox, call, status, code):
    with pytest.raises(SolapiRejectedError) as raised:
        call(solapi)

    assert (raised.value.http_status, raised.value.error_code, raised.value.ambiguous) == (status, code, False)


def _sent_group(solapi: SolapiClient) -> str:
    group_id, _, _ = _send(solapi, _messages(1))
    return group_id


@pytest.mark.parametrize("value, expected", [
    ("42", 42), (None, None), ("", None), ("0", None), ("-1", None), (" 42", None), (42, None),
    # Unicode digits pass str.isdigit() but are no id of ours (int("²") raises).
    ("²", None), ("٣", None), ("９", None),
    (str(2**63 - 1), 2**63 - 1), (str(2**63), None),
])
def test_our_message_id_is_a_positive_bigint_written_in_ascii_digits(value, expected):
    assert our_message_id({"message_id": value}) == expected
    assert our_message_id(None) is None and our_message_id("message_id") is None


@pytest.mark.parametrize(("retry_after", "expected"), [(7, 7.0), (None, None)])
def test_a_429_carries_solapis_retry_after_when_it_sends_one(solapi, sandbox, retry_after, expected):
    sandbox.fail_next("create_group", action="429", retry_after=retry_after)

    with pytest.raises(SolapiRateLimited) as raised:
        solapi.create_group()

    assert (raised.value.http_status, raised.value.retry_after, raised.value.ambiguous) == (429, expected, False)


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_the_sandbox_reports_the_most_calls_it_saw_in_any_second():
    # By arrival time, whatever the load: synthetic arrivals, windows of one second [t, t + 1).
    ledger = Ledger()
    for at in (100.0, 100.3, 100.6, 100.99, 101.5, 101.55, 103.0):
        ledger.record_request(RequestRecord(at, "POST", "/messages/v4/groups", "create_group", 200, None, 1.0))

    assert ledger.max_requests_per_second() == 4  # 100.0 – 100.99
    assert ledger.max_requests_per_second(since=100.5) == 4  # 100.6 – 101.55
    assert ledger.max_requests_per_second(since=102.0) == 1


@pytest.mark.parametrize("message", [
    OutgoingMessage(message_id=1, to="01012345678", sender="0212345678", text="내일 휴원입니다.", message_type="SMS"),
    OutgoingMessage(message_id=2, to="010-1234-5678", sender="02-123-4567", text="긴 안내", message_type="LMS",
                    subject="안내"),
    OutgoingMessage(message_id=3, to="01012345678", sender="0212345678", text="", message_type="MMS", subject=""),
    OutgoingMessage(message_id=4, to="01012345678", sender="0212345678", text="#{이름} 출석", message_type="ATA",
                    pf_id="KA01PF", template_id="KA01TP", variables={"이름": "민수", "#{반}": "A"}, disable_sms=False),
    OutgoingMessage(message_id=5, to="01012345678", sender="0212345678", text="출석", message_type="ATA",
                    pf_id="KA01PF", template_id="KA01TP"),
], ids=["sms", "lms-dashes", "mms-empty", "alimtalk-variables-fallback", "alimtalk-plain"])
def test_the_payload_is_what_the_sdks_model_would_send(message):
    assert message.to_payload() == message.to_request().model_dump(exclude_none=True, by_alias=True)


def test_a_type_solapi_does_not_know_is_refused_before_any_call_as_the_sdks_model_refuses_it():
    message = OutgoingMessage(message_id=1, to="01012345678", sender="0212345678", text="x", message_type="XXX")
    with pytest.raises(ValueError):
        message.to_request()
    with pytest.raises(ValueError):
        message.to_payload()
