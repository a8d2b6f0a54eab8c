"""The table in messaging/pipeline/policies.py: which exceptions are infrastructure faults (retried
through SQS, never failing a message) and which are defects (the errback's business)."""

import botocore.exceptions
import kombu.exceptions
import pytest
from celery.exceptions import Reject
from django.db import DataError, IntegrityError, InterfaceError, OperationalError

from messaging.pipeline.policies import infrastructure_fault


def _raised_while_handling(first: Exception, second: Exception) -> Exception:
    try:
        try:
            raise first
        except Exception:
            raise second  # noqa: B904 (the implicit context is the point)
    except Exception as error:
        return error


def _raised_from(cause: Exception, error: Exception) -> Exception:
    try:
        raise error from cause
    except Exception as raised:
        return raised


@pytest.mark.parametrize("error", [
    OperationalError("terminating connection due to administrator command"),
    OperationalError("could not serialize access due to concurrent update"),
    OperationalError("database is locked"),
    InterfaceError("connection already closed"),
    kombu.exceptions.OperationalError("SQS unreachable"),
    botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    Reject(kombu.exceptions.OperationalError("the retry could not be published"), requeue=False),
    _raised_from(OperationalError("server closed the connection"), RuntimeError("step failed")),
], ids=lambda error: type(error).__name__)
def test_infrastructure_faults(error):
    assert infrastructure_fault(error) is not None


@pytest.mark.parametrize("error", [
    IntegrityError("duplicate key"),
    DataError("value too long"),
    RuntimeError("a bug"),
    Reject("not an exception", requeue=False),
    # A defect raised while handling a dropped connection is still a defect.
    _raised_while_handling(OperationalError("gone"), KeyError("bug")),
], ids=lambda error: type(error).__name__)
def test_defects(error):
    assert infrastructure_fault(error) is None
