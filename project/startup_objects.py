"""Leave the objects a process made at start-up out of every later garbage collection.

Python's full collection walks every tracked object of the process. With Django, DRF, Celery
and the project loaded that is some 200,000 objects, and a big send (10,000 recipients in the
web) or a chunk (1,000 messages in a pool process) allocates enough to set one off: about
100 ms of a 10,000-recipient request's CPU went to walking objects that live as long as the
process (docs/benchmarks.md, "The write path of a send"). `gc.freeze` moves them to a permanent
generation that collections skip; collections still run, over what requests and tasks made.
"""

import gc


def freeze_startup_objects() -> None:
    """Collect once, then freeze what is left. Call it when start-up is done (after the fork)."""
    gc.collect()
    gc.freeze()
