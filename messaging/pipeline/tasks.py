"""Celery tasks: thin entry points into messaging/pipeline/delivery.py. Each takes ids only.

The API publishes one `dispatch` per send request, on the interactive queue whatever its size
(queues.dispatch_queue); small requests share the one already due on their queue
(messaging/pipeline/outbox.py). A small request (its lane, SendRequest.queue, is the interactive
queue) is carried to the end by a dispatch that sweeps every small request waiting
(messaging/pipeline/express.py). A broadcast's chunks were created by the API with its rows
(messaging/compose/message_rows.py; its dispatch chunks only messages released since: deferred,
scheduled); they are published on the bulk queue a few at a time (pacing.py), each as one
`deliver_chunk` task that carries it to the end
(one_hop.py). What a one-hop task cannot finish goes on through
the chunk's chain reserve_credit → send_to_solapi → finalize, with `rollback` as the error
callback of every step; beat's sweep resumes a chunk through the chain too.
"""

import logging

from celery import Task, chain, shared_task
from celery.canvas import Signature
from celery.exceptions import Retry

from messaging.models import Chunk, SendRequest
from messaging.pipeline import delivery, express, one_hop, outbox, pacing, queue_progress
from messaging.pipeline.backoff import SQS_MAX_DELAY_SECONDS
from messaging.pipeline.policies import (
    handle_send_failure,
    infrastructure_fault,
    retry_after_infrastructure_fault,
)
from messaging.pipeline.queues import ALL_QUEUES, INTERACTIVE_QUEUE
from messaging.reports import inbox, reconciliation

logger = logging.getLogger(__name__)


class PipelineTask(Task):
    """What every step shares, so task bodies stay about their step: infrastructure faults
    (a dropped database connection, SQS unreachable) are retried with backoff through SQS
    and never reach the errback (messaging/pipeline/policies.py has the table); start,
    retry and failure logging."""

    # policies.py bounds retries with counters kept on the chunk; infrastructure faults are
    # retried as long as they last.
    max_retries = None

    def __call__(self, *args, **kwargs):
        if self.request.called_directly:  # a plain function call, not a worker's execution
            return super().__call__(*args, **kwargs)
        # The worker's tracer has pushed this execution's request already (celery/app/trace.py);
        # Task.__call__ would push an empty one over it, so run the body directly, as Celery's
        # own guide for custom __call__ does.
        try:
            return self.run(*args, **kwargs)
        except Retry:
            raise
        except Exception as error:
            fault = infrastructure_fault(error)
            if fault is None:
                raise
            raise retry_after_infrastructure_fault(self, fault) from error

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        logger.info("task_retry task=%s args=%s error=%s", self.name, args, type(exc).__name__)

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        logger.error("task_failed task=%s args=%s error=%s: %s", self.name, args, type(exc).__name__, exc)


@shared_task(name=outbox.DISPATCH_TASK, base=PipelineTask, bind=True)
def dispatch(self, send_request_id: int) -> dict[str, int]:
    send_request = SendRequest.objects.get(id=send_request_id)
    if send_request.queue == INTERACTIVE_QUEUE:
        # A small request goes in one hop, sharing a Solapi group with its neighbours.
        outcome = express.deliver(send_request_id, task_id=self.request.id or "")
        _hand_over(outcome)
        return {"send_request": send_request_id, "chunks": outcome.chunks, "accepted": outcome.accepted,
                "handed_over": len(outcome.handed_over)}
    chunk_ids = delivery.split_into_chunks(send_request_id)
    published = publish_paced_chunks(send_request_id)
    return {"send_request": send_request_id, "chunks": len(chunk_ids), "published": published}


@shared_task(name="messaging.deliver_chunk", base=PipelineTask, bind=True)
def deliver_chunk(self, chunk_id: int) -> dict[str, int]:
    """One chunk of a broadcast in one hop (messaging/pipeline/one_hop.py); once it is done,
    the broadcast's next chunk takes its place on the queue."""
    outcome = one_hop.carry([chunk_id], task_id=self.request.id or "")
    _hand_over(outcome)
    if not outcome.handed_over:  # else the chain's finalize publishes the next one
        publish_next_chunks_after(chunk_id)
    return {"chunk": chunk_id, "accepted": outcome.accepted, "handed_over": len(outcome.handed_over)}


def _hand_over(outcome: one_hop.HopOutcome) -> None:
    """What a one-hop task could not finish goes on through each chunk's chain."""
    for chunk in outcome.handed_over:
        # Through SQS DelaySeconds, as every retry (messaging/pipeline/backoff.py).
        delay = {"DelaySeconds": min(outcome.delay, SQS_MAX_DELAY_SECONDS)} if outcome.delay else {}
        chunk_pipeline(chunk.id, queue=chunk.queue, first_step=chunk.first_step).apply_async(**delay)


def publish_next_chunks_after(chunk_id: int) -> int:
    """A chunk has left its academy's share (done, or rolled back): its broadcast's next ones
    take its place."""
    return publish_paced_chunks(Chunk.objects.values_list("send_request_id", flat=True).get(id=chunk_id))


def publish_paced_chunks(send_request_id: int) -> int:
    """Publish the broadcast's next chunks, as many as its academy's fair share allows
    (messaging/pipeline/pacing.py), each as one deliver_chunk task. Returns how many."""
    chunk_ids = pacing.claim_chunks_to_publish(send_request_id)
    if chunk_ids:
        queue = SendRequest.objects.values_list("queue", flat=True).get(id=send_request_id)
        for chunk_id in chunk_ids:
            deliver_chunk.si(chunk_id).apply_async(queue=queue)
    return len(chunk_ids)


def chunk_pipeline(chunk_id: int, *, queue: str, first_step: str = "reserve") -> Signature:
    """The chain for one chunk, from the given step on. Every step is idempotent, so a
    chain may be started again from where a chunk stopped."""
    steps = {"reserve": reserve_credit, "send": send_to_solapi, "finalize": finalize}
    names = list(steps)[list(steps).index(first_step):]
    return chain(*(steps[name].si(chunk_id).set(queue=queue) for name in names)).on_error(rollback.s())


@shared_task(name="messaging.reserve_credit", base=PipelineTask)
def reserve_credit(chunk_id: int) -> int:
    delivery.reserve_chunk(chunk_id)
    return chunk_id


@shared_task(name="messaging.send_to_solapi", base=PipelineTask, bind=True)
def send_to_solapi(self, chunk_id: int) -> dict:
    # A lease of this execution's own: a second copy of the same task is another execution.
    lease = delivery.Lease(chunk_id, task_id=self.request.id or "")
    try:
        outcome = delivery.send_chunk(lease)
    except Exception as error:
        handle_send_failure(self, lease, error)
        return {"chunk": chunk_id, "gave_up": True}
    finally:
        # After the policy: its writes are fenced on the lease too.
        delivery.release_lease(lease)
    return {"chunk": chunk_id, "accepted": outcome.accepted, "failed": outcome.failed,
            "already_sent": outcome.already_sent}


@shared_task(name="messaging.finalize", base=PipelineTask)
def finalize(chunk_id: int) -> dict:
    outcome = delivery.finalize_chunk(chunk_id)
    publish_next_chunks_after(chunk_id)
    return {"chunk": chunk_id, **outcome}


@shared_task(name="messaging.rollback")
def rollback(request, exc, traceback) -> None:
    """Error callback of every chain step. Unbound with three arguments, so Celery calls
    it inline in the failing worker with the failed task's request (docs/celery-on-sqs.md,
    "Chains and the rollback errback")."""
    chunk_id = request.args[0]
    if infrastructure_fault(exc) is not None:
        # Not a defect: the step did its work (or deferred it), and publishing what comes next
        # (or its own retry) failed because SQS or the database is unreachable. Nothing is
        # wrong with the messages: the step's own message could not be acked either and comes
        # back, and beat resumes a chunk left behind anyway.
        logger.warning("rollback_skipped_infrastructure chunk=%s step=%s error=%s", chunk_id, request.task, exc)
        return
    delivery.roll_back_chunk(chunk_id, failed_step=request.task, error=f"{type(exc).__name__}: {exc}")
    publish_next_chunks_after(chunk_id)


# No result row: up to one task per webhook POST (a dozen a second under load), and the batch
# keeps what the result would say (applied, and what became of its reports).
@shared_task(name=inbox.APPLY_TASK, base=PipelineTask, ignore_result=True)
def apply_received_reports(up_to_batch_id: int) -> dict[str, int]:
    """Apply the webhook's waiting report batches, up to the newest stored when it starts (POSTs
    that found this task due published none: messaging/reports/inbox.py). It gives way to a
    small send's dispatch, and is bounded well inside the soft time limit: what is left is
    published again, behind what waits on the queue."""
    return inbox.apply_published(up_to_batch_id, time_budget=APPLY_TIME_BUDGET_SECONDS)


# A third of the soft time limit (120 s by default): a long backlog is applied over several runs.
APPLY_TIME_BUDGET_SECONDS = 40.0


# --- beat ---------------------------------------------------------------------------------


@shared_task(name="messaging.redispatch_undispatched")
def redispatch_undispatched() -> int:
    """The outbox relay: publish requests whose dispatch never reached SQS, or was lost there."""
    return outbox.relay_undispatched()


@shared_task(name="messaging.resume_stale_chunks")
def resume_stale_chunks() -> int:
    """Start the chain again for chunks that stopped moving (a lost message, a crash the
    errback could not settle), from the step each stopped at; never for a chunk whose step
    still waits in its queue (messaging/pipeline/queue_progress.py)."""
    sweep = delivery.stale_chunks()
    for chunk in sweep.stuck:
        logger.warning("chunk_resumed chunk=%s first_step=%s", chunk.id, chunk.first_step)
        chunk_pipeline(chunk.id, queue=chunk.queue, first_step=chunk.first_step).apply_async()
    if sweep.stuck or sweep.waiting:
        logger.info("stale_chunks stuck=%s waiting=%s", len(sweep.stuck), sum(sweep.waiting.values()))
    # An idle queue starts nothing and its head stays put: a probe lets the next sweep see it caught up.
    queue_progress.publish_probes([*ALL_QUEUES, *sweep.waiting])
    # Broadcasts whose next chunk was never published (a finalize died first), or that may
    # have more on the queue now that workers were added.
    for send_request_id in pacing.requests_with_room():
        publish_paced_chunks(send_request_id)
    return len(sweep.stuck)


@shared_task(name="messaging.release_deferred")
def release_deferred() -> int:
    """Dispatch the send requests whose night-deferred ads are now due."""
    return outbox.release_due_deferred()


@shared_task(name="messaging.reapply_waiting_reports")
def reapply_waiting_reports() -> int:
    """Webhook batches left waiting (a lost publish, a crashed worker) get their apply again."""
    return inbox.publish_for_waiting()


@shared_task(name="messaging.reconcile_reports")
def reconcile_reports() -> dict[str, int]:
    return reconciliation.reconcile()
