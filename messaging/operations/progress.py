"""How far a send request (a broadcast) has come, and when it should be done: the status API
(messaging/selectors.py) and the admin's send-request page show the same numbers.

- percent_final: messages with a final status (delivered, failed, skipped) out of all;
- percent_sent: messages handed to Solapi or settled (not pending, held or sending);
- throughput_per_second: messages handed over per second since the dispatch (skipped ones,
  decided at acceptance, not counted), up to the last one while nothing is left to send;
- estimated_finish: when the rest should be handed over at that pace (Asia/Seoul, ISO 8601);
  null before the first message went (no pace yet) and once nothing is left to send.
Delivery reports come after the hand-over, from the carriers, at their pace: percent_final
catches up with percent_sent then, and is not estimated.
"""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Max

from messaging.models import FINAL_STATUSES, UNSENT_STATUSES, MessageStatus, SendRequest
from project import clock


@dataclass(frozen=True)
class Progress:
    running: bool
    percent_final: float
    percent_sent: float
    throughput_per_second: float
    started: datetime
    estimated_finish: datetime | None
    completed: datetime | None

    def as_data(self) -> dict[str, Any]:
        """For the API: times in ISO 8601, Seoul, with the offset."""
        times = ("started", "estimated_finish", "completed")
        return {**asdict(self), **{name: clock.iso(getattr(self, name)) for name in times}}


def progress(send_request: SendRequest, counts: dict[str, int], *, now: datetime | None = None) -> Progress:
    """`counts`: the request's messages by status (messaging/operations/counts.py)."""
    now = now or clock.now()
    total = counts.get("total", 0)
    final = sum(counts.get(s, 0) for s in FINAL_STATUSES)
    unsent = sum(counts.get(s, 0) for s in UNSENT_STATUSES)
    handed_over = total - unsent - counts.get(MessageStatus.SKIPPED, 0)
    started = send_request.dispatched or send_request.created
    end = now if unsent else _last_handed_over(send_request) or now
    elapsed = max((end - started).total_seconds(), 0.001)
    throughput = handed_over / elapsed if handed_over > 0 else 0.0
    finish = now + timedelta(seconds=unsent / throughput) if unsent and throughput > 0 else None
    return Progress(
        running=bool(unsent) or send_request.completed is None,
        percent_final=_percent(final, total),
        percent_sent=_percent(total - unsent, total),
        throughput_per_second=round(throughput, 2),
        started=started,
        estimated_finish=finish,
        completed=send_request.completed,
    )


def _last_handed_over(send_request: SendRequest) -> datetime | None:
    moments = send_request.messages.aggregate(accepted=Max("accepted_at"), completed=Max("completed_at"))
    return max((m for m in moments.values() if m is not None), default=None)


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 100.0
