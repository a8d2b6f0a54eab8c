"""Small sends in one hop, sharing Solapi groups (messaging/pipeline/express.py), through a
real worker, the local SQS and the sandbox."""

from decimal import Decimal

import pytest

from harness.academies import make_academy
from harness.waiting import DEFAULT_TIMEOUT
from messaging.models import Chunk, DeliveryAttempt, MessageStatus, SolapiOperation
from messaging.pipeline import outbox
from messaging.pipeline.tasks import dispatch
from tests.pipeline.conftest import assert_books_balance, send, statuses, wait_settled

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

OTHER_SENDER = "0311112222"


def test_small_requests_waiting_together_go_out_in_one_group_each_message_once(worker, sandbox):
    first_academy = make_academy(students=3)
    sandbox.register_sender(OTHER_SENDER)
    second_academy = make_academy(students=2, messaging_sender=OTHER_SENDER)
    waiting = [send(first_academy, publish=False), send(second_academy, publish=False),
               send(first_academy, mode="alimtalk", publish=False)]

    # One dispatch takes every small request waiting beside its own.
    assert outbox.publish_dispatch(waiting[0])
    settled = [wait_settled(send_request) for send_request in waiting]

    assert [statuses(messages) for messages in settled] == [[MessageStatus.ACCEPTED] * 3,
                                                            [MessageStatus.ACCEPTED] * 2,
                                                            [MessageStatus.ACCEPTED] * 3]
    assert sandbox.sends_per_message_id() == {str(m.id): 1 for messages in settled for m in messages}
    assert sum(sandbox.request_counts()["create_group"].values()) == 1
    assert sum(sandbox.request_counts()["send_group"].values()) == 1
    group_ids = set(Chunk.objects.values_list("solapi_group_id", flat=True))
    assert len(group_ids) == 1 and "" not in group_ids
    # Every chunk has its own row for each call, so each knows its group went out.
    assert all(chunk.may_have_been_sent() for chunk in Chunk.objects.all())
    assert DeliveryAttempt.objects.filter(operation=SolapiOperation.SEND_GROUP).count() == 3

    # The others' own dispatches come later and find nothing left to do.
    for send_request in waiting[1:]:
        result = dispatch.apply_async(args=(send_request.id,), queue=send_request.queue)
        assert result.get(timeout=DEFAULT_TIMEOUT) == {"send_request": send_request.id, "chunks": 0, "accepted": 0,
                                                       "handed_over": 0}
    assert sum(sandbox.request_counts()["send_group"].values()) == 1
    assert_books_balance(first_academy, spent=3 * Decimal("13") + 3 * Decimal("9"))
    assert_books_balance(second_academy, spent=2 * Decimal("13"))
