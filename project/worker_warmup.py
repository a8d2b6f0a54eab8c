"""A pool process gets ready for its first chunk when it starts, not during that chunk.

Measured in a fresh process against the benchmark stack (docs/benchmarks.md, "Where the time
goes"): building the Solapi client (its HTTP client's TLS context) takes 50 – 190 ms, and the
first publish 130 – 390 ms (kombu's channel lists the queues, boto3 builds its client, the
queue is looked up). A process paid both inside its first task: the first chunks after a worker
starts (a deploy, a new worker added to scale out) took a third longer, and the first
`deliver_chunk`'s publish of the next chunk held a slot idle meanwhile.

- The Solapi client is built in the pool process's start-up (`worker_process_init`): local
  work only, no request to Solapi.
- The publisher is opened in a daemon thread: it needs SQS, and a pool process that does not
  report itself alive within `worker_proc_alive_timeout` (4 s) is killed and started again,
  which an SQS outage at start-up must not turn into a loop. Whatever fails is logged and left
  to the first publish, which does the same. The thread uses a producer of the app's pool as a
  task does (the pool hands each producer to one user at a time); a task that publishes
  before it is done takes another producer.
"""

import logging
import threading

from celery import Celery

logger = logging.getLogger(__name__)


def warm_up(app: Celery) -> threading.Thread:
    """Build the Solapi client now, and open the publisher in the background (returned)."""
    from messaging.solapi.client import get_client

    try:
        get_client()
    except Exception:  # the first task builds it, and fails as it would have
        logger.warning("warm_up_solapi_client_failed", exc_info=True)
    # Made here, not in the thread: a task publishing meanwhile must find the same pool.
    producers = app.amqp.producer_pool
    thread = threading.Thread(target=_open_publisher, args=(app, producers), name="warm-up-publisher", daemon=True)
    thread.start()
    return thread


def _open_publisher(app: Celery, producers) -> None:
    try:
        with producers.acquire(block=True, timeout=5) as producer:
            # What the first publish to each queue would do: kombu caches the declaration on
            # the connection, which goes back to the pool for the first task to take.
            for queue in app.amqp.queues.values():
                producer.maybe_declare(queue)
    except Exception as error:
        logger.info("warm_up_publisher_failed error=%s: %s", type(error).__name__, str(error)[:200])
