"""Backoff for deferred chunks, published through SQS DelaySeconds.

A Celery countdown keeps the message in the worker's memory with its visibility
clock running, and duplicates it past the visibility timeout. kombu 5.7 turns a
DelaySeconds message property into a native SQS delay, so the message waits in SQS
instead. SQS caps the delay at 900 s. Details and sources: docs/celery-on-sqs.md,
"Backoff through SQS DelaySeconds".
"""

import random

from celery import Task
from django.conf import settings

SQS_MAX_DELAY_SECONDS = 900


def backoff_seconds(attempt: int) -> int:
    """Exponential backoff with full jitter: attempt 0 → up to base, 1 → up to 2×base, …"""
    ceiling = min(settings.MESSAGING_RETRY_MAX_SECONDS, settings.MESSAGING_RETRY_BASE_SECONDS * 2**attempt)
    return max(1, min(SQS_MAX_DELAY_SECONDS, round(random.uniform(ceiling / 2, ceiling))))


def retry_later(task: Task, *, delay: int, exc: Exception):
    """Re-publish the running task (and the rest of its chain) `delay` seconds from now.
    Use as `raise retry_later(...)`. The task should have max_retries=None: the policy
    bounds retries by its own counters in the database, which survive redelivery."""
    return task.retry(exc=exc, countdown=0, DelaySeconds=min(delay, SQS_MAX_DELAY_SECONDS))
