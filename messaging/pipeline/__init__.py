"""Delivering a send: the outbox, the Celery tasks and the steps they run (reserve, send, finalize)."""
