"""A pool process gets ready for its first chunk when it starts, not during that chunk.

Measured in a fresh process against the benchmark stack (docs/benchmarks.md, "A chunk in the
worker"): building the Solapi client (its HTTP client's TLS context) takes 50 – 190 ms, and the
first publish 130 – 390 ms (kombu's channel lists the queues, boto3 builds its client, the
queue is looked up). A process paid both inside its first task: the first chunks after a worker
starts (a deploy, a new worker added to scale out) took a third longer, and the first
`deliver_chunk`'s publish of the next chunk held a slot idle meanwhile.

- The Solapi client is built in the pool process's start-up (`worker_process_init`): local
  work only, no request to Solapi.
- The publisher is set up as gunicorn's processes set up theirs (project/celery.py,
  `warm_up_publishing`), in a daemon thread: it needs SQS, and a pool process that does not
  report itself alive within `worker_proc_alive_timeout` (4 s) is killed and started again,
  which an SQS outage at start-up must not turn into a loop. A failure is logged and left to
  the first publish, which does the same; a task that publishes before the thread is done
  takes another producer of the pool.
- Then what the process made so far is left out of later garbage collections
  (project/startup_objects.py): a chunk's thousands of objects set off full collections that
  walked the whole loaded project each time.
"""

import logging
import threading

logger = logging.getLogger(__name__)


def warm_up() -> threading.Thread:
    """Build the Solapi client now, and set up one publisher in the background (returned)."""
    from messaging.solapi.client import get_client
    from project.celery import app, warm_up_publishing
    from project.startup_objects import freeze_startup_objects

    try:
        get_client()
    except Exception:  # the first task builds it, and fails as it would have
        logger.warning("warm_up_solapi_client_failed", exc_info=True)
    # Made here, not in the thread: a task publishing meanwhile must find the same pool.
    app.producer_pool  # noqa: B018
    # What the process has made so far lives as long as it does (project/startup_objects.py).
    freeze_startup_objects()
    thread = threading.Thread(target=warm_up_publishing, args=(1,), name="warm-up-publisher", daemon=True)
    thread.start()
    return thread
