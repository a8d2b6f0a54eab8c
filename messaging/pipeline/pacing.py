"""Fair shares of the workers between academies' broadcasts.

A broadcast is split into all its chunks at once, but only a few of them are on the queue
at any time: an academy may have at most its fair share of chunks published and not yet
finalized, and each finalized chunk publishes the next (tasks.finalize). With one academy
sending, its share is the whole worker capacity (the sum of the live workers' concurrency,
from their heartbeats, times MESSAGING_PACING_DEPTH so a process never waits for the next
chunk's publish); with n academies, a 1/n of it each. So a second academy's broadcast waits
behind a few of the first one's chunks, not behind all of them, and adding workers adds
messages per second, because the share grows with the capacity.

Small sends are not paced: they go on the interactive queue in one hop (express.py).
docs/capacity.md, "Fair shares", has the model and the measurements.
"""

import math
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum

from messaging.models import Chunk, ChunkStatus, WorkerHeartbeat
from messaging.operations.liveness import ALIVE_WITHIN_SECONDS
from messaging.pipeline.queues import BULK_QUEUE, INTERACTIVE_QUEUE, roles_consuming
from project import clock
from tenants.models import Tenant

# Broadcasts are paced; small sends (the interactive queue) are not.
_PACED = ~Q(send_request__queue=INTERACTIVE_QUEUE)
_PACED_UNFINISHED = ~Q(status=ChunkStatus.FINALIZED) & _PACED


def worker_capacity() -> int:
    """Task slots of the live workers that consume the bulk queue (at least 1: chunks are
    published even with no worker up, so that they wait on the queue for the first one). The
    interactive worker's slots take no chunk: counting them would queue chunks with no slot."""
    cutoff = clock.now() - timedelta(seconds=ALIVE_WITHIN_SECONDS)
    slots = WorkerHeartbeat.objects.filter(last_seen__gte=cutoff, stopped__isnull=True,
                                           queues__in=roles_consuming(BULK_QUEUE)).aggregate(
        total=Sum("concurrency"))["total"]
    return max(1, slots or 1)


def fair_share() -> int:
    """How many chunks each academy with a broadcast under way may have on the queue."""
    sending = Chunk.objects.filter(_PACED_UNFINISHED).order_by().values("send_request__tenant_id").distinct().count()
    depth = worker_capacity() * settings.MESSAGING_PACING_DEPTH
    return max(1, math.ceil(depth / max(1, sending)))


def claim_chunks_to_publish(send_request_id: int) -> list[int]:
    """Mark as published the next chunks of the request that fit in its academy's share, and
    return them for the caller to publish.

    An academy's claims take turns on its tenant row (FOR NO KEY UPDATE, which a message's
    foreign key does not wait for; on SQLite the IMMEDIATE transaction): two of its chunks
    finalized at once would otherwise each see the other's slot free and publish a share
    each. Another academy's broadcast starting at the same moment may still be counted a
    moment late (the share of each shrinks at the next claim)."""
    tenant_id = Chunk.objects.filter(send_request_id=send_request_id).values_list(
        "send_request__tenant_id", flat=True).first()
    if tenant_id is None:
        return []
    with transaction.atomic():
        list(Tenant.objects.select_for_update(no_key=True).filter(id=tenant_id).values_list("id", flat=True))
        in_flight = Chunk.objects.filter(_PACED_UNFINISHED, published__isnull=False,
                                         send_request__tenant_id=tenant_id).count()
        room = fair_share() - in_flight
        if room <= 0:
            return []
        claimed = list(Chunk.objects.filter(send_request_id=send_request_id, published__isnull=True,
                                            status=ChunkStatus.QUEUED)
                       .order_by("index").values_list("id", flat=True)[:room])
        # Its chain starts moving now: the stale sweep measures its idleness from here, not
        # from its creation (a broadcast's chunks are created with its messages).
        now = clock.now()
        Chunk.objects.filter(id__in=claimed).update(published=now, updated=now)
    return claimed


def waiting_to_be_published() -> Q:
    """Chunks of broadcasts held back by the pacing: not stale, only waiting their turn."""
    return Q(published__isnull=True, status=ChunkStatus.QUEUED) & _PACED


def requests_with_room() -> list[int]:
    """Broadcasts with chunks waiting to be published (beat's safety net: a finalize that
    died before publishing the next chunk, workers added since)."""
    return list(Chunk.objects.filter(waiting_to_be_published())
                .order_by("send_request_id").values_list("send_request_id", flat=True).distinct()[:200])
