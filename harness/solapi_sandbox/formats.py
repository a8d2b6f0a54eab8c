"""Identifiers and timestamps in the shapes Solapi uses."""

import itertools
import secrets
import string
import uuid
from datetime import UTC, datetime

# Solapi ids are 32 characters: a prefix, a timestamp and 15 characters. The sandbox fills the
# 15 with a per-process tag and a counter, so ids never collide, even across sandboxes in one run.
_PROCESS_TAG = "".join(secrets.choice(string.ascii_uppercase) for _ in range(5))
_serial = itertools.count(1)


def _new_id(prefix: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return f"{prefix}{stamp}{_PROCESS_TAG}{next(_serial):010X}"


def new_group_id() -> str:
    return _new_id("G4V")


def new_message_id() -> str:
    return _new_id("M4V")


def new_event_id() -> str:
    return uuid.uuid4().hex


def timestamp() -> str:
    """Now, as Solapi writes dates: ISO 8601 UTC with milliseconds and a Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def digits_only(phone: str) -> str:
    """Phone numbers are compared by digits, so "010-1234-5678" and "01012345678" are one number."""
    return "".join(ch for ch in phone if ch.isdigit())
