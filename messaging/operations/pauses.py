"""Messages held back by a platform pause show as paused, with the reason, wherever people
look (the status URL, the admin).

While the breaker is open (our Solapi key, the server clock, our Solapi balance), a chunk's
messages show their pipeline status, `held` or `sending` (their chunk's step: messaging/models.py,
shown_message_status), because that is what the pipeline acts on. But nothing is being sent and
nobody at the academy can fix it: shown as `sending`, they look stuck. The chunk records the
pause (paused_since, pause_class, last_error: messaging/pipeline/delivery.record_pause); this
module turns that into what is shown.
"""

from typing import Any

from django.db.models import Count

from messaging.failures import FailureClass
from messaging.models import Chunk, Message, MessageStatus, shown_message_status

PAUSED = "paused"
# The pipeline statuses a pause can hold a message in.
PAUSABLE = (MessageStatus.HELD, MessageStatus.SENDING)


def pause_of(chunk: Chunk | None) -> dict[str, Any] | None:
    """Why and since when the chunk is paused, or None if it is not."""
    if chunk is None or not chunk.paused:
        return None
    reason_code = chunk.pause_class or FailureClass.PLATFORM
    return {"since": chunk.paused_since, "reason_code": reason_code, "reason": str(FailureClass(reason_code).label),
            "detail": chunk.last_error}


def paused_chunks(send_request_id: int) -> dict[int, dict[str, Any]]:
    """{chunk id: pause_of(chunk)} for the request's paused chunks."""
    chunks = Chunk.objects.filter(send_request_id=send_request_id, paused_since__isnull=False)
    return {chunk.id: pause for chunk in chunks if (pause := pause_of(chunk))}


def shown_status(status: str, pause: dict[str, Any] | None) -> str:
    return PAUSED if pause and status in PAUSABLE else status


def count_paused(send_request_id: int, chunk_ids: list[int]) -> dict[str, int]:
    """How many of the request's messages each pausable status holds in paused chunks (the
    statuses shown: shown_message_status)."""
    if not chunk_ids:
        # Nearly always (nothing paused): not even the query's compilation, a few ms of a status read.
        return {}
    rows = (Message.objects.filter(send_request_id=send_request_id, chunk_id__in=chunk_ids)
            .values(shown=shown_message_status()).filter(shown__in=PAUSABLE).annotate(n=Count("id")))
    return {row["shown"]: row["n"] for row in rows}
