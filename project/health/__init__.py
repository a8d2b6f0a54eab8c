"""/healthz: can this deployment send messages right now, and if not, why?

- checks.py: what is looked at (database, broker, breaker, workers, pipeline), one function each;
- monitor.py: a background thread that runs the checks every few seconds and keeps the snapshot;
- views.py: /healthz, answered from that snapshot, so a request never waits on the broker.

docs/operations.md, "Health".
"""
