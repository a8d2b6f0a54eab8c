"""A chunk's three steps in one task: reserve, send, finalize, called in order.

They are the chain's own steps under the chain's own guards (messaging/pipeline/delivery.py),
so exactly once holds as it does for the chain; what goes away is two SQS round trips per
chunk, each to the back of the queue, where a neighbour's chunk would wait behind every
step of everyone else's. Small sends (express.py, several chunks sharing one Solapi group)
and each chunk of a broadcast (tasks.deliver_chunk) are carried this way.

When a step cannot finish here (a Solapi failure the send step's policy must handle, a
defect, an unreachable database), every chunk is handed to the chain from the step it
reached: the chain has the typed retry policies (policies.py) and the rollback errback.
A Solapi failure is first counted on each chunk as the send step's table would, and the
chain waits as long as that table says (policies.after_shared_send_failure).
"""

import logging
import uuid
from dataclasses import dataclass

from messaging.models import Chunk, ChunkStatus
from messaging.pipeline import delivery, policies

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HopOutcome:
    chunks: int
    accepted: int = 0
    # Chunks to go on through the chain, from the step each reached.
    handed_over: tuple[delivery.StaleChunk, ...] = ()
    # How long the handed-over chains wait first (the send step's policy for the failure).
    delay: int = 0


def carry(chunk_ids: list[int], *, task_id: str) -> HopOutcome:
    """Reserve, send (one Solapi group for all of them) and finalize the chunks. Raises
    nothing a step raised: what could not finish is in `handed_over`."""
    if not chunk_ids:
        return HopOutcome(chunks=0)
    # One lease token for this execution's chunks: they are claimed and released together.
    token = uuid.uuid4().hex
    leases = [delivery.Lease(chunk_id, task_id=task_id, token=token) for chunk_id in chunk_ids]
    delay = 0
    try:
        try:
            delivery.reserve_chunks(chunk_ids)
            try:
                outcome = delivery.send_together(leases)
            except Exception as error:
                delay = policies.after_shared_send_failure(leases, error)
                raise
        finally:
            delivery.release_leases(leases)
        delivery.finalize_chunks(list(Chunk.objects.filter(id__in=chunk_ids, status=ChunkStatus.SENT)
                                      .values_list("id", flat=True)))
    except Exception as error:
        handed_over = tuple(delivery.unfinished_chunks(chunk_ids))
        logger.warning("one_hop_handed_over chunks=%s handed_over=%s delay=%s error=%s: %s", chunk_ids[:5],
                       len(handed_over), delay, type(error).__name__, str(error)[:200])
        return HopOutcome(chunks=len(chunk_ids), handed_over=handed_over, delay=delay)
    # A chunk whose send lease another execution held was skipped. That execution may be dead
    # (its lease release failed with the database, say): the chain's send step waits the lease
    # out and carries the chunk on, or finds it done.
    left = tuple(delivery.unfinished_chunks(chunk_ids))
    if left:
        logger.info("one_hop_leased_elsewhere chunks=%s", [chunk.id for chunk in left][:5])
    return HopOutcome(chunks=len(chunk_ids), accepted=outcome.accepted, handed_over=left)
