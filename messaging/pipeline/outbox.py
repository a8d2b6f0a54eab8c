"""Publishing a send request's one dispatch task, honestly.

The request is committed first; publishing comes after. If SQS is unreachable the
request stays undispatched and beat publishes it again (redispatch_undispatched), so
a broker outage delays messages but loses none.
"""

import logging

from django.db.models import F
from django.utils import timezone

from messaging.models import SendRequest

logger = logging.getLogger(__name__)


def publish_dispatch(send_request: SendRequest) -> bool:
    """Publish dispatch(send_request.id) on its queue. Returns whether it was published."""
    from messaging.pipeline.tasks import dispatch

    try:
        # No publish retries in the request: beat's redispatch_undispatched is the retry.
        dispatch.apply_async((send_request.id,), queue=send_request.queue, retry=False)
    except Exception as exc:  # kombu and botocore raise many types for "broker unreachable"
        SendRequest.objects.filter(id=send_request.id).update(
            dispatch_attempts=F("dispatch_attempts") + 1, dispatch_error=f"{type(exc).__name__}: {exc}"[:300]
        )
        logger.warning("dispatch_publish_failed send_request=%s error=%s", send_request.id, type(exc).__name__)
        return False
    SendRequest.objects.filter(id=send_request.id).update(
        dispatched=timezone.now(), dispatch_attempts=F("dispatch_attempts") + 1, dispatch_error=""
    )
    return True
