"""The SQS queue names, spelled once."""

from django.conf import settings

# Broadcast chunks and everything else.
BULK_QUEUE = settings.MESSAGING_SQS_QUEUE_NAME
# Small sends (see MESSAGING_INTERACTIVE_MAX_RECIPIENTS), consumed beside the bulk queue.
INTERACTIVE_QUEUE = f"{BULK_QUEUE}-interactive"
ALL_QUEUES = (INTERACTIVE_QUEUE, BULK_QUEUE)


def queue_for(recipients: int) -> str:
    """A send to few recipients goes on the interactive queue, so a broadcast in progress
    does not delay it."""
    return INTERACTIVE_QUEUE if recipients <= settings.MESSAGING_INTERACTIVE_MAX_RECIPIENTS else BULK_QUEUE
