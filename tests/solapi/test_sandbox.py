"""The Solapi sandbox over real HTTP on 127.0.0.1: the unmodified SDK validates its replies, and
every behaviour the test suite, benchmarks and drills rely on is asserted here."""

import http.client
import itertools
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from solapi import SolapiMessageService
from solapi.error.MessageNotReceiveError import MessageNotReceivedError
from solapi.lib.authenticator import Authenticator
from solapi.model import KakaoOption, RequestMessage, SendRequestConfig
from solapi.model.response.common_response import GroupMessageResponse
from solapi.model.response.groups.get_group_messages import GetGroupMessagesResponse
from solapi.model.webhook.single_report import SingleReportPayload

from harness.ports import free_port, wait_for_port
from harness.solapi_sandbox import SolapiSandbox
from harness.waiting import DEFAULT_TIMEOUT, wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]
UNREGISTERED_SENDER = "0299999999"
SHOW_LIST = SendRequestConfig(show_message_list=True)


def message_json(sender: str, to: str, text: str = "[학원] 출석 알림", message_id: str | None = None, **fields) -> dict:
    """A message exactly as the SDK serialises it."""
    custom_fields = {"message_id": message_id} if message_id else None
    message = RequestMessage(from_=sender, to=to, text=text, custom_fields=custom_fields, **fields)
    return message.model_dump(exclude_none=True, by_alias=True)


def error_of(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["errorCode"]


# --- send-many through the SDK ----------------------------------------------------------------


def test_send_many_registers_and_sends_every_message(sandbox, sdk, sender):
    messages = [
        RequestMessage(from_=sender, to=f"0101234000{i}", text="출석 확인", custom_fields={"message_id": f"m{i}"})
        for i in range(3)
    ]

    response = sdk.send(messages, SHOW_LIST)

    assert response.group_info.status == "SENDING"
    assert response.group_info.count.registered_success == 3
    assert response.group_info.count.sent_total == 3
    assert response.failed_message_list == []
    assert [(item.status_code, item.custom_fields) for item in response.message_list] == [
        ("2000", {"message_id": f"m{i}"}) for i in range(3)
    ]
    assert sandbox.sends_per_message_id() == {"m0": 1, "m1": 1, "m2": 1}
    assert sandbox.accepted_total == 3


def test_send_many_reports_an_unregistered_sender_per_message(sandbox, sdk, sender):
    response = sdk.send(
        [
            RequestMessage(from_=sender, to="01011112222", text="안녕", custom_fields={"message_id": "ok"}),
            RequestMessage(
                from_=UNREGISTERED_SENDER, to="01011113333", text="안녕", custom_fields={"message_id": "no"}
            ),
        ]
    )

    failed = response.failed_message_list
    assert [(item.status_code, item.status_message, item.from_, item.custom_fields) for item in failed] == [
        ("1062", "발신번호 미등록", UNREGISTERED_SENDER, {"message_id": "no"})
    ]
    assert failed[0].message_id and failed[0].account_id and failed[0].to == "01011113333"
    assert (response.group_info.count.total, response.group_info.count.registered_failed) == (2, 1)
    assert response.message_list is None  # showMessageList was off
    assert sandbox.sends_per_message_id() == {"ok": 1}


def test_send_many_with_every_message_refused_raises_message_not_received(sandbox, sdk):
    with pytest.raises(MessageNotReceivedError) as raised:
        sdk.send(RequestMessage(from_=UNREGISTERED_SENDER, to="01011112222", text="안녕"))

    assert [message.status_code for message in raised.value.failed_messages] == ["1062"]
    assert sandbox.accepted_total == 0


def test_group_queries_and_balance_validate_and_settle_after_reports(sandbox, sdk, sender):
    response = sdk.send(
        [
            RequestMessage(from_=sender, to=f"0105555000{i}", text="수업 안내", custom_fields={"message_id": f"q{i}"})
            for i in range(2)
        ]
    )
    group_id = response.group_info.group_id

    assert sandbox.wait_for_reports()
    group = sdk.get_group(group_id)
    listing = sdk.get_group_messages(group_id)

    assert group.status == "COMPLETE"
    assert (group.count.sent_total, group.count.sent_success, group.count.sent_pending) == (2, 2, 0)
    assert group.date_completed is not None
    assert {m.to: (m.status_code, m.custom_fields["message_id"]) for m in listing.message_list.values()} == {
        "01055550000": ("4000", "q0"),
        "01055550001": ("4000", "q1"),
    }
    assert all(m.group_id == group_id and m.type.value == "SMS" for m in listing.message_list.values())
    balance = sdk.get_balance()
    assert (balance.balance, balance.point) == (1_000_000.0, 0.0)


# --- the group flow ---------------------------------------------------------------------------


def test_group_flow_create_add_send_and_refuse_a_second_send(sandbox, client, sender):
    created = client.request("POST", "/messages/v4/groups", {"allowDuplicates": False, "customFields": {"batch": "b1"}})
    group = GroupMessageResponse.model_validate(created.json())
    assert group.status == "PENDING" and group.group_id.startswith("G4V")

    added = client.add_messages(
        group.group_id,
        [
            message_json(sender, "01011110001", message_id="g1"),
            message_json(UNREGISTERED_SENDER, "01011110002", message_id="g2"),
        ],
    )
    assert added.status_code == 200
    assert added.json()["errorCount"] == 1
    results = added.json()["resultList"]
    assert [(item["to"], item["statusCode"], item["customFields"]) for item in results] == [
        ("01011110001", "2000", {"message_id": "g1"}),
        ("01011110002", "1062", {"message_id": "g2"}),
    ]
    assert all(
        {"from", "type", "country", "messageId", "statusMessage", "accountId"} <= item.keys() for item in results
    )
    assert sandbox.accepted_total == 0  # adding is not sending

    sent = client.send_group(group.group_id)
    assert sent.status_code == 200
    assert GroupMessageResponse.model_validate(sent.json()).status == "SENDING"
    assert sandbox.sends_per_message_id() == {"g1": 1}

    assert error_of(client.send_group(group.group_id)) == (409, "AlreadySent")
    late = client.add_messages(group.group_id, [message_json(sender, "01011110003")])
    assert error_of(late) == (400, "InvalidGroupStatus")
    assert sandbox.sends_per_message_id() == {"g1": 1}


def test_group_messages_move_from_registered_to_sent(sandbox, client, sender):
    sandbox.set_report_delay(60)  # hold the reports back, to see the in-between status
    group_id = client.create_group()
    client.add_messages(
        group_id, [message_json(sender, "01022220001"), message_json(UNREGISTERED_SENDER, "01022220002")]
    )
    assert client.group_statuses(group_id) == {"01022220001": "2000", "01022220002": "1062"}

    client.send_group(group_id)

    listing = client.request("GET", f"/messages/v4/groups/{group_id}/messages").json()
    assert GetGroupMessagesResponse.model_validate(listing).next_key is None
    assert client.group_statuses(group_id) == {"01022220001": "3000", "01022220002": "1062"}
    assert client.request("GET", f"/messages/v4/groups/{group_id}").json()["count"]["sentPending"] == 1


def test_group_messages_page_with_limit_and_start_key(client, sender):
    group_id = client.create_group()
    client.add_messages(group_id, [message_json(sender, f"0103333000{i}") for i in range(5)])

    first = client.request("GET", f"/messages/v4/groups/{group_id}/messages?limit=2").json()
    second = client.request(
        "GET", f"/messages/v4/groups/{group_id}/messages?limit=2&startKey={first['nextKey']}"
    ).json()

    assert [m["to"] for m in first["messageList"].values()] == ["01033330000", "01033330001"]
    assert [m["to"] for m in second["messageList"].values()] == ["01033330002", "01033330003"]
    assert GetGroupMessagesResponse.model_validate(second).limit == 2


def test_group_messages_page_by_20_without_a_limit_and_by_at_most_500(client, sender):
    group_id = client.create_group()
    client.add_messages(group_id, [message_json(sender, f"010444{i:05d}") for i in range(520)])
    listing = f"/messages/v4/groups/{group_id}/messages"

    default = client.request("GET", listing).json()
    largest = client.request("GET", f"{listing}?limit=500").json()
    rest = client.request("GET", f"{listing}?limit=500&startKey={largest['nextKey']}").json()

    assert (len(default["messageList"]), default["limit"]) == (20, 20)
    assert len(largest["messageList"]) == 500 and len(rest["messageList"]) == 20 and rest["nextKey"] is None
    assert set(largest["messageList"]).isdisjoint(rest["messageList"])
    for query in ("limit=501", "limit=0", "limit=ten", "startKey=M4VNOTINTHISGROUP"):
        assert error_of(client.request("GET", f"{listing}?{query}")) == (400, "ValidationError")


@pytest.mark.parametrize(
    ("signal", "fell_back", "kept"),
    [
        ("type", {"type": "SMS"}, {"type": "ATA", "replacement": False}),
        ("replacement", {"type": "ATA", "replacement": True}, {"type": "ATA", "replacement": False}),
        ("group_count", {"type": "ATA"}, {"type": "ATA"}),
    ],
)
def test_a_fallback_is_signalled_the_chosen_way_and_billed_as_delivered(sandbox, client, sender, make_receiver,
                                                                       signal, fell_back, kept):
    receiver = make_receiver()
    sandbox.set_webhook_url(receiver.url)
    sandbox.set_fallback_signal(signal)
    sandbox.set_recipient_outcome("01075000001", fallback=True)
    group_id = client.create_group()
    alimtalk = {"kakao_options": KakaoOption(pf_id="KA01PF0000", template_id="TPL0001")}
    client.add_messages(group_id, [message_json(sender, f"0107500000{i}", "짧은 알림", **alimtalk) for i in (1, 2)])
    client.send_group(group_id)
    assert sandbox.wait_for_reports(timeout=5)

    def signalled(item: dict) -> dict:
        return {key: item[key] for key in ("type", "replacement") if key in item}

    reports = {event["data"]["to"]: signalled(event["data"]) for event in receiver.events}
    listed = {m["to"]: signalled(m) for m in client.request("GET", f"/messages/v4/groups/{group_id}/messages")
              .json()["messageList"].values()}
    assert reports == listed == {"01075000001": fell_back, "01075000002": kept}
    group = client.request("GET", f"/messages/v4/groups/{group_id}").json()
    assert group["count"]["sentReplacement"] == 1
    # Two AlimTalks charged on sending; the one that fell back refunded and charged as an SMS.
    assert group["balance"] == {"requested": 18.0, "replacement": 13.0, "refund": 9.0, "sum": 22.0}


def test_the_tariff_and_an_overbilling_fault_change_what_a_group_is_billed(sandbox, client, control, sender):
    sandbox.set_prices(sms=20)
    control.post("/billing", json={"overbill_per_message": 2.5})
    group_id = client.create_group()
    client.add_messages(group_id, [message_json(sender, "01076000001"), message_json(sender, "01076000002", "x" * 100)])
    client.send_group(group_id)

    balance = client.request("GET", f"/messages/v4/groups/{group_id}").json()["balance"]

    assert balance["requested"] == 20 + 29 + 2 * 2.5
    assert control.get("/billing").json() == {
        "prices": {"sms": 20.0, "lms": 29.0, "mms": 60.0, "ata": 9.0}, "overbill_per_message": 2.5,
        "fallback_signal": "type"}
    assert control.post("/billing", json={"fallback_signal": "carrier pigeon"}).status_code == 400
    sandbox.reset()
    assert sandbox.billing()["overbill_per_message"] == 0.0


@pytest.mark.parametrize(
    ("method", "suffix"), [("PUT", "/messages"), ("POST", "/send"), ("GET", ""), ("GET", "/messages")]
)
def test_unknown_group_is_not_found(client, sender, method, suffix):
    body = {"messages": [message_json(sender, "01011112222")]} if method == "PUT" else None
    response = client.request(method, f"/messages/v4/groups/G4VNOSUCHGROUP{suffix}", body)
    assert error_of(response) == (404, "ResourceNotFound")


def test_sending_a_group_without_registered_messages_is_a_validation_error(sandbox, client):
    group_id = client.create_group()
    client.add_messages(group_id, [message_json(UNREGISTERED_SENDER, "01011112222")])
    assert error_of(client.send_group(group_id)) == (400, "ValidationError")
    assert sandbox.accepted_total == 0


def test_concurrent_sends_of_one_group_get_group_in_processing(sandbox, client, make_client, sender, monkeypatch):
    group_id = client.create_group()
    client.add_messages(group_id, [message_json(sender, "01044440001", message_id="p1")])
    # The first send claims the group, then waits (as Solapi's processing time) until the
    # second one has its answer: the two overlap whatever the machine's load.
    claimed, second_answered = threading.Event(), threading.Event()
    begin_send, finish_send = sandbox.state.begin_send, sandbox.state.finish_send

    def claim(gid):
        begin_send(gid)
        claimed.set()

    def finish_after_the_second(gid):
        second_answered.wait(timeout=DEFAULT_TIMEOUT)
        return finish_send(gid)

    monkeypatch.setattr(sandbox.state, "begin_send", claim)
    monkeypatch.setattr(sandbox.state, "finish_send", finish_after_the_second)
    first: list[httpx.Response] = []
    sending = threading.Thread(target=lambda: first.append(client.send_group(group_id)))

    sending.start()
    assert claimed.wait(timeout=DEFAULT_TIMEOUT)
    second = make_client().send_group(group_id)
    second_answered.set()
    sending.join()

    assert first[0].status_code == 200
    assert error_of(second) == (409, "GroupInProcessing")
    assert error_of(client.send_group(group_id)) == (409, "AlreadySent")
    assert sandbox.sends_per_message_id() == {"p1": 1}


def test_more_than_ten_thousand_messages_in_one_request_is_refused(sandbox, client, sender):
    group_id = client.create_group()
    one_too_many = [message_json(sender, "01011112222")] * 10_001

    assert error_of(client.add_messages(group_id, one_too_many)) == (413, "RecipientsTooMany")
    response = client.request("POST", "/messages/v4/send-many/detail", {"messages": one_too_many})
    assert error_of(response) == (413, "RecipientsTooMany")
    assert client.add_messages(group_id, one_too_many[:10_000]).status_code == 200
    assert sandbox.accepted_total == 0


def test_exhausted_platform_balance_is_402(sandbox, sdk, client, sender):
    group_id = client.create_group()
    client.add_messages(group_id, [message_json(sender, "01011112222")])
    sandbox.set_platform_balance_exhausted(True)

    with pytest.raises(Exception) as raised:
        sdk.send(RequestMessage(from_=sender, to="01011112222", text="안녕"))
    assert raised.value.args == ("NotEnoughBalance", "보유 잔액이 부족합니다.")
    assert error_of(client.send_group(group_id)) == (402, "NotEnoughBalance")
    assert sdk.get_balance().balance == 0.0
    assert sandbox.accepted_total == 0

    sandbox.set_platform_balance_exhausted(False)
    assert client.send_group(group_id).status_code == 200


# --- registration ------------------------------------------------------------------------------

KAKAO = {"pfId": "KA01PF0000", "templateId": "TPL0001", "variables": {"#{name}": "홍길동"}, "disableSms": False}


@pytest.mark.parametrize(
    ("fields", "status_code", "message_type"),
    [
        ({"text": "출석하였습니다."}, "2000", "SMS"),
        ({"text": "가" * 45}, "2000", "SMS"),  # 90 bytes
        ({"text": "가" * 46}, "2000", "LMS"),  # 92 bytes
        ({"text": "똠" * 45}, "2000", "SMS"),  # beyond KS X 1001, still 2 bytes a syllable
        ({"text": "안내", "subject": "공지"}, "2000", "LMS"),
        ({"text": "출석 😀"}, "1029", "SMS"),
        ({"text": "가" * 46, "type": "SMS"}, "1031", "SMS"),
        ({"text": "a" * 2001, "type": "LMS"}, "1031", "LMS"),
        ({"type": "ATA", "text": "알림"}, "1041", "ATA"),
        ({"type": "ATA", "kakaoOptions": {"pfId": "KA01PF0000"}}, "1042", "ATA"),
        ({"kakaoOptions": KAKAO}, "2000", "ATA"),
        ({"to": None, "text": "안녕"}, "1010", "SMS"),
        ({"text": "안녕", "customFields": {"message_id": 7}}, "1032", "SMS"),
        ({"text": "안녕", "type": "PIGEON"}, "1025", "PIGEON"),
    ],
)
def test_registration_codes_and_type_detection(client, sender, fields, status_code, message_type):
    message = {"from": sender, "to": "01011112222", "country": "82", "autoTypeDetect": True, **fields}
    if message["to"] is None:
        del message["to"]
    group_id = client.create_group()

    result = client.add_messages(group_id, [message]).json()["resultList"]

    assert [(item["statusCode"], item["type"]) for item in result] == [(status_code, message_type)]
    listing = client.request("GET", f"/messages/v4/groups/{group_id}/messages").json()
    GetGroupMessagesResponse.model_validate(listing)


def test_a_list_of_recipients_registers_one_message_each(client, sender):
    group_id = client.create_group()
    message = message_json(sender, "01011110000") | {"to": ["01011110001", "010-1111-0002"]}

    result = client.add_messages(group_id, [message]).json()["resultList"]

    assert [(item["to"], item["statusCode"]) for item in result] == [("01011110001", "2000"), ("010-1111-0002", "2000")]


# --- per-recipient outcomes --------------------------------------------------------------------


def test_register_stage_outcome_refuses_the_recipient(sandbox, sdk, sender):
    sandbox.set_recipient_outcome("010-9999-0000", stage="register", code="3010")

    response = sdk.send([RequestMessage(from_=sender, to=to, text="안녕") for to in ("01099990000", "01099990001")])

    assert [(item.to, item.status_code, item.status_message) for item in response.failed_message_list] == [
        ("01099990000", "3010", "수신번호 형식 오류")
    ]
    assert sandbox.sends_per_recipient() == {"01099990001": 1}


def test_report_stage_outcomes_and_sms_fallback(sandbox, sdk, sender, make_receiver):
    receiver = make_receiver()
    sandbox.set_webhook_url(receiver.url)
    sandbox.set_recipient_outcome("01070000001", stage="report", code="3041")
    for phone in ("01070000002", "01070000003", "01070000004"):
        sandbox.set_recipient_outcome(phone, fallback=True)
    kakao = KakaoOption(pf_id="KA01PF0000", template_id="TPL0001")
    kakao_without_sms = KakaoOption(pf_id="KA01PF0000", template_id="TPL0001", disable_sms=True)

    response = sdk.send(
        [
            RequestMessage(from_=sender, to="01070000001", text="휴대폰 꺼짐"),
            RequestMessage(from_=sender, to="01070000002", text="짧은 알림", kakao_options=kakao),
            RequestMessage(from_=sender, to="01070000003", text="대체 발송 끔", kakao_options=kakao_without_sms),
            RequestMessage(from_=sender, to="01070000004", text="가" * 60, kakao_options=kakao),
        ]
    )
    assert sandbox.wait_for_reports()

    reports = {event["data"]["to"]: event["data"] for event in receiver.events}
    assert {to: (data["statusCode"], data["type"]) for to, data in reports.items()} == {
        "01070000001": ("3041", "SMS"),
        "01070000002": ("4000", "SMS"),
        "01070000003": ("3104", "ATA"),
        "01070000004": ("4000", "LMS"),
    }
    group = sdk.get_group(response.group_info.group_id)
    assert (group.status, group.count.sent_success, group.count.sent_replacement) == ("COMPLETE", 2, 2)
    assert sandbox.accepted_total == 4


# --- authentication ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_key", "api_secret", "error_code"),
    [
        ("WRONGKEY", "test-secret-000000000000000000001", "InvalidApiKey"),
        ("TESTKEY0000000001", "wrong-secret", "SignatureDoesNotMatch"),
    ],
)
def test_wrong_credentials_are_refused(sandbox, make_client, api_key, api_secret, error_code):
    response = make_client(api_key=api_key, api_secret=api_secret).request("GET", "/cash/v1/balance")
    assert error_of(response) == (403, error_code)


def test_a_clock_fifteen_minutes_off_is_refused(client, monkeypatch):
    skewed = (datetime.now().astimezone() - timedelta(minutes=16)).isoformat()
    monkeypatch.setattr(Authenticator, "get_iso_datetime", staticmethod(lambda: skewed))

    assert error_of(client.request("GET", "/cash/v1/balance")) == (403, "RequestTimeTooSkewed")


def test_a_replayed_signature_is_refused(client):
    header = client.authenticator.get_auth_info()

    assert client.request("GET", "/cash/v1/balance", authorization=header).status_code == 200
    assert error_of(client.request("GET", "/cash/v1/balance", authorization=header)) == (403, "DuplicatedSignature")


def test_header_keys_are_case_insensitive(client):
    header = client.authenticator.get_auth_info().replace("ApiKey=", "apiKey=").replace("Date=", "date=")
    assert client.request("GET", "/cash/v1/balance", authorization=header).status_code == 200


@pytest.mark.parametrize("header", ["Bearer abc", "HMAC-SHA256 ApiKey=TESTKEY0000000001", "HMAC-SHA256 nonsense", None])
def test_missing_or_garbled_header_is_an_invalid_api_key(sandbox, header):
    response = httpx.get(f"{sandbox.url}/cash/v1/balance", headers={"Authorization": header} if header else {})
    assert error_of(response) == (403, "InvalidApiKey")


def test_auth_status_switch_answers_401_until_the_key_is_fixed(sandbox, sdk, client):
    right_key = sandbox.credentials.api_key
    sandbox.set_credentials(api_key="ROTATEDKEY", auth_status=401)

    assert error_of(client.request("GET", "/cash/v1/balance")) == (401, "InvalidApiKey")
    with pytest.raises(Exception) as raised:
        sdk.get_balance()
    assert raised.value.args[0] == "InvalidApiKey"

    sandbox.set_credentials(api_key=right_key)
    assert sdk.get_balance().balance == 1_000_000.0


# --- faults ------------------------------------------------------------------------------------


def test_latency_delays_one_operation_without_blocking_others(sandbox, client, make_client, monkeypatch):
    sandbox.set_latency(3000, operation="balance")
    balance_arrived = threading.Event()
    latency_seconds = sandbox.faults.latency_seconds

    def noting_arrival(operation):
        if operation == "balance":
            balance_arrived.set()
        return latency_seconds(operation)

    monkeypatch.setattr(sandbox.faults, "latency_seconds", noting_arrival)
    timings: dict[str, float] = {}

    def timed(name: str, call) -> None:
        started = time.monotonic()
        call()
        timings[name] = time.monotonic() - started

    slow = threading.Thread(target=timed, args=("balance", lambda: client.request("GET", "/cash/v1/balance")))
    slow.start()
    assert balance_arrived.wait(timeout=DEFAULT_TIMEOUT)
    timed("create_group", make_client().create_group)
    create_group_done_first = slow.is_alive()
    slow.join()

    assert timings["balance"] >= 3.0
    assert create_group_done_first, timings  # not queued behind the slow call


def test_global_latency_applies_to_every_call(sandbox, client):
    sandbox.set_latency(200)
    started = time.monotonic()
    client.create_group()
    assert time.monotonic() - started >= 0.2


def test_injected_5xx_as_json_and_as_plain_text(sandbox, sdk, client):
    sandbox.fail_next("balance", action="5xx", status=503)
    sandbox.fail_next("balance", action="5xx", status=502, plain_text=True)

    with pytest.raises(Exception) as raised:
        sdk.get_balance()
    assert raised.value.args[0] == "UnknownError" and "ServiceUnavailable" in raised.value.args[1]
    plain = client.request("GET", "/cash/v1/balance")
    assert (plain.status_code, plain.text) == (502, "Bad Gateway")
    assert client.request("GET", "/cash/v1/balance").status_code == 200


def test_a_burst_of_429_then_recovery(sandbox, client):
    sandbox.fail_next("*", times=3, action="429")

    statuses = [client.request("GET", "/cash/v1/balance").status_code for _ in range(4)]

    assert statuses == [429, 429, 429, 200]
    assert client.http.get("/_sandbox/requests?operation=balance").json()["requests"][0]["fault"] == "429"
    assert sandbox.request_counts() == {"balance": {"429": 3, "200": 1}}


def test_a_429_may_carry_retry_after(sandbox, client):
    sandbox.fail_next("balance", action="429", retry_after=7)
    sandbox.fail_next("balance", action="429")

    told, untold = client.request("GET", "/cash/v1/balance"), client.request("GET", "/cash/v1/balance")

    assert (told.status_code, told.headers.get("Retry-After")) == (429, "7")
    assert (untold.status_code, untold.headers.get("Retry-After")) == (429, None)


def test_a_storm_answers_every_call_429_until_it_ends(sandbox, client):
    # Over HTTP, as drills start it: every second answer carries Retry-After.
    client.http.post("/_sandbox/faults", json={"storm": {"seconds": 1.5, "retry_after": 3, "retry_after_every": 2}})

    during = [client.request("GET", "/cash/v1/balance") for _ in range(4)]
    assert [(r.status_code, r.headers.get("Retry-After")) for r in during] == [(429, None), (429, "3")] * 2
    assert sandbox.faults.to_json()["storm"]["replies"] == 4
    while sandbox.faults.to_json()["storm"]["seconds_left"] > 0:
        time.sleep(0.05)
    assert client.request("GET", "/cash/v1/balance").status_code == 200
    assert client.http.get("/_sandbox/rate").json() == {"max_requests_per_second": sandbox.max_requests_per_second()}


def test_random_faults_are_reproducible_with_a_seed(make_client):
    def statuses(seed: int) -> list[int]:
        with SolapiSandbox("K", "S", seed=seed) as sandbox:
            sandbox.set_fault_rates(error_5xx=0.2, too_many_requests=0.1, burst_429=0.05, burst_length=4)
            signed = make_client(api_key="K", api_secret="S", url=sandbox.url)
            return [signed.request("GET", "/cash/v1/balance").status_code for _ in range(60)]

    first, again, other = statuses(7), statuses(7), statuses(8)

    assert first == again
    assert first != other
    assert {200, 429, 503} <= set(first)


def test_random_429_bursts_last_burst_length_requests(make_client):
    with SolapiSandbox("K", "S", seed=3) as sandbox:
        sandbox.set_fault_rates(burst_429=0.1, burst_length=4)
        signed = make_client(api_key="K", api_secret="S", url=sandbox.url)
        statuses = [signed.request("GET", "/cash/v1/balance").status_code for _ in range(80)]

    runs = [len(list(run)) for status, run in itertools.groupby(statuses) if status == 429]
    assert runs and all(run % 4 == 0 for run in runs[:-1])


def test_a_dropped_connection_registers_nothing(sandbox, sdk, sender):
    sandbox.fail_next("send_many", action="drop")
    message = RequestMessage(from_=sender, to="01011112222", text="안녕", custom_fields={"message_id": "d1"})

    with pytest.raises(httpx.RemoteProtocolError):
        sdk.send(message)
    assert sandbox.accepted_total == 0
    # The server logs the request after it has closed the socket: the client may see the
    # drop before the record exists.
    wait_until(lambda: sandbox.request_log, what="the dropped request's record")
    assert [(record.status, record.fault) for record in sandbox.request_log] == [(None, "drop")]

    sdk.send(message)
    assert sandbox.sends_per_message_id() == {"d1": 1}


def test_accept_then_timeout_counts_the_send_and_a_naive_retry_sends_twice(sandbox, client, make_client, sender):
    impatient = make_client(timeout=0.5)
    group_id = client.create_group()
    client.add_messages(group_id, [message_json(sender, "01011112222", message_id="t1")])
    sandbox.fail_next("send_group", action="accept_then_timeout", hang_seconds=2)

    with pytest.raises(httpx.ReadTimeout):
        impatient.send_group(group_id)
    # Accepted all the same (on a busy machine perhaps just after the client gave up).
    wait_until(lambda: sandbox.sends_per_message_id() == {"t1": 1}, what="the timed-out send to be accepted")
    # Retrying the group send is safe: Solapi refuses a second send of the same group.
    assert error_of(client.send_group(group_id)) == (409, "AlreadySent")

    sandbox.fail_next("send_many", action="accept_then_timeout", hang_seconds=2)
    body = {"messages": [message_json(sender, "01011112222", message_id="n1")]}
    with pytest.raises(httpx.ReadTimeout):
        impatient.request("POST", "/messages/v4/send-many/detail", body)
    wait_until(lambda: sandbox.sends_per_message_id() == {"t1": 1, "n1": 1}, what="the timed-out send to be accepted")
    assert client.request("POST", "/messages/v4/send-many/detail", body).status_code == 200
    assert sandbox.sends_per_message_id() == {"t1": 1, "n1": 2}


def test_fault_rules_refuse_unknown_operations_and_actions(sandbox):
    with pytest.raises(ValueError, match="unknown operation"):
        sandbox.fail_next("send_everything")
    with pytest.raises(ValueError):
        sandbox.fail_next("balance", action="explode")


# --- delivery reports --------------------------------------------------------------------------


def test_reports_are_posted_in_batches_and_validate(sandbox, sdk, sender, make_receiver):
    receiver = make_receiver()
    sandbox.set_webhook_url(receiver.url)
    messages = [
        RequestMessage(from_=sender, to=f"010{i:08d}", text="출석", custom_fields={"message_id": f"r{i}"})
        for i in range(150)
    ]

    group_id = sdk.send(messages).group_info.group_id
    assert sandbox.wait_for_reports()

    reports = [report for body in receiver.bodies for report in SingleReportPayload.model_validate(body).root]
    assert sorted(len(body) for body in receiver.bodies) == [50, 100]
    assert sorted(report.data.custom_fields["message_id"] for report in reports) == sorted(f"r{i}" for i in range(150))
    assert {(r.data.status_code, r.data.type, r.data.group_id, r.retry_count) for r in reports} == {
        ("4000", "SMS", group_id, 0)
    }
    assert len({report.event_data_id for report in reports}) == 150
    assert all(report.data.date_reported and report.data.network_code for report in reports)


def test_a_duplicate_delivery_repeats_the_event_id_with_a_higher_retry_count(sandbox, sdk, sender, make_receiver):
    receiver = make_receiver()
    sandbox.set_webhook_url(receiver.url)
    sandbox.set_duplicate_report_rate(1.0)

    sdk.send([RequestMessage(from_=sender, to=f"0106666000{i}", text="안녕") for i in range(2)])
    assert sandbox.wait_for_reports()

    deliveries: dict[str, list[tuple[int, dict]]] = {}
    for event in receiver.events:
        deliveries.setdefault(event["eventDataId"], []).append((event["retryCount"], event["data"]))
    assert len(deliveries) == 2
    for repeated in deliveries.values():
        assert [retry_count for retry_count, _ in repeated] == [0, 1]
        assert repeated[0][1] == repeated[1][1]
    SingleReportPayload.model_validate(receiver.events)


def test_failed_webhook_posts_are_retried(sandbox, sdk, sender, make_receiver):
    receiver = make_receiver(failures=2)
    sandbox.set_webhook_url(receiver.url)

    sdk.send(RequestMessage(from_=sender, to="01011112222", text="안녕"))
    assert sandbox.wait_for_reports()

    assert [(event["retryCount"], event["data"]["statusCode"]) for event in receiver.events] == [(2, "4000")]
    assert sandbox.report_status()["posts_failed"] == 2


# --- control plane over HTTP -------------------------------------------------------------------


@pytest.fixture
def control(sandbox):
    with httpx.Client(base_url=f"{sandbox.url}/_sandbox") as plain:
        yield plain


def test_control_plane_steers_senders_recipients_and_balance(sandbox, sdk, control):
    assert control.post("/senders", json={"add": ["02-9999-9999"]}).json()["senders"] == ["0212345678", "0299999999"]
    control.post("/recipients", json={"outcomes": {"01000000009": {"stage": "register", "code": "1061"}}})

    response = sdk.send(
        [RequestMessage(from_=UNREGISTERED_SENDER, to=to, text="안녕") for to in ("01000000008", "01000000009")]
    )
    assert [(item.to, item.status_code) for item in response.failed_message_list] == [("01000000009", "1061")]

    assert control.post("/recipients", json={"outcomes": {"01000000009": None}}).json() == {"outcomes": {}}
    assert control.post("/platform-balance", json={"balance": 500, "exhausted": False}).json()["balance"] == 500.0
    assert sdk.get_balance().balance == 500.0
    control.post("/platform-balance", json={"exhausted": True})
    with pytest.raises(Exception, match="NotEnoughBalance"):
        sdk.send(RequestMessage(from_=UNREGISTERED_SENDER, to="01000000008", text="안녕"))


def test_control_plane_steers_faults_credentials_and_reports(sandbox, sdk, control):
    faults = control.post(
        "/faults",
        json={"rules": [{"operation": "balance", "action": "5xx", "times": 1}], "latency": {"ms": 20}},
    ).json()
    assert faults["rules"][0]["remaining"] == 1 and faults["latency_ms"]["*"] == 20.0
    with pytest.raises(Exception, match="UnknownError"):
        sdk.get_balance()
    assert control.post("/faults", json={"clear": True}).json()["rules"] == []

    assert control.post("/credentials", json={"api_key": "NEWKEY", "auth_status": 401}).json() == {
        "api_key": "NEWKEY",
        "auth_status": 401,
    }
    with pytest.raises(Exception, match="InvalidApiKey"):
        sdk.get_balance()
    control.post("/credentials", json={"api_key": sdk.auth_info["api_key"]})
    assert sdk.get_balance().balance == 1_000_000.0

    reports = control.post("/reports", json={"webhook_url": "http://127.0.0.1:9/x", "report_delay": 0.1}).json()
    assert (reports["webhook_url"], reports["report_delay"]) == ("http://127.0.0.1:9/x", 0.1)


def test_control_plane_state_request_log_and_reset(sandbox, sdk, sender, control):
    sdk.send(RequestMessage(from_=sender, to="01011112222", text="안녕", custom_fields={"message_id": "c1"}))

    state = control.get("/state").json()
    assert (state["accepted_total"], state["sends_per_message_id"]) == (1, {"c1": 1})
    assert state["request_counts"] == {"send_many": {"200": 1}}
    assert [r["operation"] for r in control.get("/requests").json()["requests"]] == ["send_many"]

    after_reset = control.post("/reset").json()
    assert (after_reset["accepted_total"], after_reset["request_counts"]) == (0, {})
    assert after_reset["senders"] == [sender]


@pytest.mark.parametrize(
    "body",
    [{"rules": [{"operation": "nope"}]}, {"rules": [{"bogus": 1}]}, {"rates": {"error_5xx": 2}}, [1, 2]],
)
def test_control_plane_rejects_bad_input(control, body):
    response = control.post("/faults", json=body)
    assert error_of(response) == (400, "ValidationError")


# --- transport and throughput ------------------------------------------------------------------


def test_binds_loopback_and_keeps_connections_alive(sandbox):
    assert sandbox.url.startswith("http://127.0.0.1:")
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port)
    sockets = []
    for _ in range(3):
        connection.request("GET", "/_sandbox/state")
        response = connection.getresponse()
        response.read()
        sockets.append(connection.sock)
        assert response.version == 11 and response.getheader("Content-Length")
    connection.close()
    assert sockets[0] is sockets[1] is sockets[2]


def test_unknown_path_is_not_found(client):
    assert error_of(client.request("GET", "/messages/v4/send-many/detail")) == (404, "ResourceNotFound")


def test_ten_thousand_messages_go_through(sandbox, client, sender):
    # How fast is benchmarks' business (make bench); here only that all of them are accepted.
    for chunk in range(10):
        group_id = client.create_group()
        messages = [message_json(sender, f"010{chunk:04d}{i:04d}", message_id=f"{chunk}-{i}") for i in range(1000)]
        assert client.add_messages(group_id, messages).json()["errorCount"] == 0
        assert client.send_group(group_id).status_code == 200

    assert sandbox.accepted_total == 10_000


# --- management command ------------------------------------------------------------------------


def test_management_command_serves_until_terminated():
    port = free_port()
    command = [sys.executable, "manage.py", "solapi_sandbox", "--port", str(port), "--api-key", "CMDKEY"]
    command += ["--api-secret", "CMDSECRET", "--sender", "0212345678", "--sender", "0299999999"]
    command += ["--auth-status", "401"]
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, "DEBUG": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, timeout=DEFAULT_TIMEOUT)
        service = SolapiMessageService("CMDKEY", "CMDSECRET")
        service.base_url = f"http://127.0.0.1:{port}"
        assert service.get_balance().balance == 1_000_000.0
        assert httpx.get(f"{service.base_url}/cash/v1/balance").status_code == 401
    finally:
        process.terminate()
        _output, errors = process.communicate(timeout=DEFAULT_TIMEOUT)

    assert process.returncode == 0, errors
    # In the project's log format (project/logging.py), on standard error like every log line.
    startup, *access_log = errors.splitlines()
    # The sender numbers are masked like any phone number in a log line.
    assert f"http://127.0.0.1:{port}" in startup and "021***5678, 029***9999" in startup
    assert "logger=solapi_sandbox msg=request method=GET path=/cash/v1/balance status=200 " in access_log[0]
    assert "logger=solapi_sandbox msg=request method=GET path=/cash/v1/balance status=401 " in access_log[1]
