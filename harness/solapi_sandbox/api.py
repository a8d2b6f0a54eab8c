"""Solapi's endpoints as the sandbox serves them, with Solapi's paths and JSON shapes."""

from http import HTTPStatus

from .codes import MAX_MESSAGES_PER_REQUEST, ErrorCode, Operation
from .errors import SolapiError, validation_error
from .formats import new_group_id
from .ledger import Ledger
from .messages import count_recipients, register_messages
from .reports import ReportDispatcher
from .routing import Call, Reply, Route, route
from .state import SandboxState


class SolapiApi:
    def __init__(self, state: SandboxState, ledger: Ledger, reports: ReportDispatcher) -> None:
        self.state = state
        self.ledger = ledger
        self.reports = reports

    def routes(self) -> list[Route]:
        return [
            route("POST", "/messages/v4/send-many/detail", Operation.SEND_MANY, self.send_many),
            route("POST", "/messages/v4/groups", Operation.CREATE_GROUP, self.create_group),
            route("PUT", "/messages/v4/groups/{group_id}/messages", Operation.ADD_MESSAGES, self.add_messages),
            route("POST", "/messages/v4/groups/{group_id}/send", Operation.SEND_GROUP, self.send_group),
            route("GET", "/messages/v4/groups/{group_id}", Operation.GET_GROUP, self.get_group),
            route(
                "GET", "/messages/v4/groups/{group_id}/messages", Operation.GET_GROUP_MESSAGES, self.get_group_messages
            ),
            route("GET", "/cash/v1/balance", Operation.BALANCE, self.balance),
        ]

    def send_many(self, call: Call) -> Reply:
        """Create a group, add the messages and send it, in one call (what the SDK's send() uses)."""
        body = call.json_object()
        _check_request_size(body.get("messages"))
        self.state.require_balance()
        group_id = new_group_id()
        messages = register_messages(body.get("messages"), group_id, self.state.registration_rules())
        self.state.create_group(bool(body.get("allowDuplicates")), body.get("appId"), group_id=group_id)
        self.state.add_messages(group_id, messages)
        if any(message.registered for message in messages):
            group_info = self._send(group_id, call)
        else:
            group_info = self.state.fail_group(group_id)
        reply = {
            "groupInfo": group_info,
            "failedMessageList": [message.summary() for message in messages if not message.registered],
        }
        if body.get("showMessageList"):
            reply["messageList"] = [message.list_item() for message in messages if message.registered]
        return Reply.ok(reply)

    def create_group(self, call: Call) -> Reply:
        body = call.json_object()
        custom_fields = body.get("customFields")
        if custom_fields is not None and not isinstance(custom_fields, dict):
            raise validation_error("customFields 는 객체여야 합니다.")
        return Reply.ok(self.state.create_group(bool(body.get("allowDuplicates")), body.get("appId"), custom_fields))

    def add_messages(self, call: Call) -> Reply:
        group_id = call.params["group_id"]
        self.state.check_group_exists(group_id)
        raw_messages = call.json_object().get("messages")
        _check_request_size(raw_messages)
        messages = register_messages(raw_messages, group_id, self.state.registration_rules())
        self.state.add_messages(group_id, messages)
        return Reply.ok(
            {
                "errorCount": sum(1 for message in messages if not message.registered),
                "resultList": [message.summary() for message in messages],
            }
        )

    def send_group(self, call: Call) -> Reply:
        return Reply.ok(self._send(call.params["group_id"], call))

    def get_group(self, call: Call) -> Reply:
        return Reply.ok(self.state.group_json(call.params["group_id"]))

    def get_group_messages(self, call: Call) -> Reply:
        listing = self.state.group_messages_json(
            call.params["group_id"], call.query.get("startKey"), call.query.get("limit")
        )
        return Reply.ok(listing)

    def balance(self, call: Call) -> Reply:
        balance = self.state.platform_balance()
        return Reply.ok({"balance": balance["balance"], "point": balance["point"]})

    def _send(self, group_id: str, call: Call) -> dict:
        """Send a group; every registered message counts as accepted from this moment."""
        self.state.begin_send(group_id)
        try:
            # The request's latency is spent here, between claiming the group and handing it over,
            # as Solapi's own processing time: a concurrent send meanwhile gets GroupInProcessing.
            call.wait_latency()
            group_info, accepted = self.state.finish_send(group_id)
        except BaseException:
            self.state.abandon_send(group_id)
            raise
        self.ledger.record_accepted(accepted)
        self.reports.schedule([message.message_id for message in accepted])
        return group_info


def _check_request_size(raw_messages: object) -> None:
    if count_recipients(raw_messages) > MAX_MESSAGES_PER_REQUEST:
        raise SolapiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, ErrorCode.RECIPIENTS_TOO_MANY)
