"""A guarded fix for a kombu 5.7.0 bug that kills SQS workers.

kombu turns an SQS ReceiveMessage answered with 408/5xx (or a curl timeout) into an
empty *list* (kombu/asynchronous/aws/connection.py, _on_list_ready), but 5.7.0's
Channel._on_messages_ready calls ``messages.get('Messages')`` on it. The AttributeError
ends the worker with "Unrecoverable error" after a single SQS hiccup
(docs/celery-on-sqs.md, "The kombu 5.7.0 receive crash"). Earlier releases checked
``'Messages' in messages``, which is safe, so the fix applies to 5.7.0 only and
disappears on upgrade; tests/foundation/test_kombu_fix.py proves it over the wire.
"""

import logging

import kombu

logger = logging.getLogger(__name__)

AFFECTED_KOMBU_VERSIONS = {"5.7.0"}


def apply() -> bool:
    """Patch the SQS channel when the installed kombu has the bug. Returns whether it did."""
    if kombu.__version__ not in AFFECTED_KOMBU_VERSIONS:
        return False
    from kombu.transport.SQS import Channel

    original = Channel._on_messages_ready
    if getattr(original, "_academy_fix", False):
        return True

    def _on_messages_ready(self, queue, qname, messages):
        if not isinstance(messages, dict):
            # An empty list here means SQS answered 5xx or timed out; poll again.
            logger.warning("sqs_receive_failed queue=%s action=poll_again", qname)
            return 0
        return original(self, queue, qname, messages)

    _on_messages_ready._academy_fix = True
    Channel._on_messages_ready = _on_messages_ready
    return True
