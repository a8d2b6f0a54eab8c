"""Structured logs, with phone numbers and the webhook secret masked in every record: the
project's own, Django's request logging, Celery's, and gunicorn's access and error logs
(gunicorn.conf.py) alike.

One format for every line: key=value (`ts=… level=… logger=… msg=… key=value`) or, with
LOG_FORMAT=json, one JSON object per line with the same keys, for log search in production.
One clock: `ts` is Korea's time with its offset (2026-03-02T09:00:00.123+09:00), in every
process whatever its TZ (gunicorn's master logs before Django sets TZ), the same clock as the
admin's and `make run`'s process prefix (project/devstack.py).
"""

import json
import logging
import os
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings

from tenants.phones import PHONE_IN_TEXT, mask_phones_in_text

# project.clock.KST, not imported from there: clock imports Django's models, and settings.py
# (and gunicorn's master, before Django is set up) import this module.
KST = ZoneInfo("Asia/Seoul")

LOG_FORMATS = ("kv", "json")

# The delivery-report webhook's secret path segment (messaging/api/urls.py), whatever it
# holds: a wrong guess is masked too, it may be one character away from the real one.
_WEBHOOK_SECRET_SEGMENT = re.compile(r"(/solapi/reports/)[^/\s?#\"']+")
MASKED_SECRET = "[secret]"

# Attributes every LogRecord has; anything else came in through `extra=` and is printed.
# Celery adds `data`, a dict repeating its message.
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "data"}


class PhoneMaskingFilter(logging.Filter):
    """Masks phone numbers in the message, its arguments, extra fields and traceback.

    Arguments are masked whatever their type: an exception or a dict prints a number as
    readily as a string does (a duplicate-key error quotes the row's key)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_phones_in_text(str(record.msg))
        if isinstance(record.args, dict):
            record.args = {k: _mask(v) for k, v in record.args.items()}
        elif record.args:
            record.args = tuple(_mask(a) for a in record.args)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _mask(value))
        if record.exc_info and not record.exc_text:
            # Formatters print exc_text when it is set, so every handler gets the masked one.
            record.exc_text = mask_phones_in_text(_TRACEBACKS.formatException(record.exc_info))
        return True


_TRACEBACKS = logging.Formatter()
_PLAIN = (int, float, bool, type(None))


class _Masked:
    """Stands in for an argument whose text held a phone number, for %s and %r alike."""

    def __init__(self, value):
        self._str = mask_phones_in_text(str(value))
        self._repr = mask_phones_in_text(repr(value))

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return self._repr


def _mask(value):
    if isinstance(value, str):
        return mask_phones_in_text(value)
    if isinstance(value, _PLAIN):
        return value  # %d and %.2f need the number itself
    try:
        text, representation = str(value), repr(value)
    except Exception:  # an object that cannot print itself is left to the formatter
        return value
    if PHONE_IN_TEXT.search(text) or PHONE_IN_TEXT.search(representation):
        return _Masked(value)
    return value


def mask_secrets(text: str) -> str:
    """The webhook secret out of a text: its path segment, and its value wherever it appears
    (when the settings are loaded: gunicorn's master logs before Django is set up)."""
    text = _WEBHOOK_SECRET_SEGMENT.sub(rf"\g<1>{MASKED_SECRET}", text)
    secret = getattr(settings, "SOLAPI_WEBHOOK_SECRET", "") if settings.configured else ""
    return text.replace(secret, MASKED_SECRET) if secret else text


class SecretMaskingFilter(logging.Filter):
    """Masks the webhook secret in the message, extra fields and traceback.

    The message is rendered here, once, and masked whole: gunicorn's access line is built
    from a dict of request atoms, Django's request log from a path, and either may carry the
    secret in any argument. Runs before PhoneMaskingFilter, which then sees plain text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as it would
            return True
        record.msg, record.args = mask_secrets(message), None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and not isinstance(value, _PLAIN):
                text = str(value)
                if mask_secrets(text) != text:
                    setattr(record, key, mask_secrets(text))
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_phones_in_text(_TRACEBACKS.formatException(record.exc_info))
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True


class AccessLogFilter(logging.Filter):
    """gunicorn's access line as fields of the project's format: `msg=request method=GET
    path=/healthz status=200 duration_ms=3 …`. gunicorn builds its line from a dict of request
    atoms with its own timestamp (a second clock); here the atoms become fields and the record's
    `ts` is the only time. Runs before the masking filters, which then mask the fields."""

    # gunicorn's atom → our field (gunicorn/glogging.py, Logger.atoms).
    FIELDS = {"m": "method", "U": "path", "q": "query", "s": "status", "B": "bytes", "M": "duration_ms",
              "h": "remote", "a": "agent"}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            atoms = record.args
            record.msg, record.args = "request", None
            for atom, field in self.FIELDS.items():
                value = atoms.get(atom)
                if value not in (None, "", "-"):
                    setattr(record, field, value)
        return True


class QuietHousekeepingFilter(logging.Filter):
    """Beat's housekeeping at DEBUG when it did nothing: the dev stack idles quietly, and a
    run that did something (a request re-dispatched, a chunk resumed) still logs at INFO.

    Celery logs three lines per periodic run (beat's "Sending due task", the worker's
    "received" and "succeeded … : 0"), a dozen a minute at the schedule's pace. Their levels
    are Celery's, so they are lowered here: shown at DEBUG, dropped otherwise. The task names
    are celeryconfig.HOUSEKEEPING_TASKS (beat's schedule). Runs before the masking filters,
    which flatten the arguments it reads."""

    # Results meaning "nothing to do": 0, None, or a dict of zeros.
    NOTHING_DONE = re.compile(r"None|0|\{\}|\{'\w+': 0(, '\w+': 0)*\}")

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("celery") or record.levelno != logging.INFO or not self._idle(record):
            return True
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return True
        return False

    def _idle(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "celery.beat" and isinstance(args, tuple) and len(args) == 2:
            return args[1] in _housekeeping_tasks()  # ("Sending due task %s (%s)", entry, task)
        if isinstance(args, dict) and args.get("name") in _housekeeping_tasks():
            if "return_value" in args:  # "Task %(name)s[%(id)s] succeeded in …: %(return_value)s"
                return bool(self.NOTHING_DONE.fullmatch(str(args["return_value"])))
            return "runtime" not in args  # "Task %(name)s[%(id)s] received"
        return False


def _housekeeping_tasks() -> frozenset[str]:
    import celeryconfig  # Celery processes only (the records above are Celery's); it reads settings

    return celeryconfig.HOUSEKEEPING_TASKS


def log_format() -> str:
    """LOG_FORMAT: `kv` (key=value, the default) or `json`; anything else stops start-up."""
    value = os.environ.get("LOG_FORMAT", "kv").strip().lower() or "kv"
    if value not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return value


def logging_config(level: str = "INFO", fmt: str | None = None) -> dict:
    """The project's LOGGING (project/settings.py): one console handler, one line per record
    in the LOG_FORMAT, secrets then phone numbers masked. Django's own handlers are emptied so
    that its request logs reach the masked handler only (its default console handler prints
    paths as they came)."""
    fmt = fmt or log_format()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "access_fields": {"()": "project.logging.AccessLogFilter"},
            "quiet_housekeeping": {"()": "project.logging.QuietHousekeepingFilter"},
            "mask_secrets": {"()": "project.logging.SecretMaskingFilter"},
            "mask_phones": {"()": "project.logging.PhoneMaskingFilter"},
        },
        "formatters": {
            "kv": {"()": "project.logging.KeyValueFormatter"},
            "json": {"()": "project.logging.JsonFormatter"},
        },
        "handlers": {
            # Order matters: the first two read the record's arguments, which mask_secrets flattens.
            "console": {"class": "logging.StreamHandler", "formatter": fmt,
                        "filters": ["access_fields", "quiet_housekeeping", "mask_secrets", "mask_phones"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.server": {"handlers": [], "level": "INFO", "propagate": True},
            "django.db.backends": {"level": "WARNING"},
            # httpx logs every request at INFO; our DeliveryAttempt rows already record each Solapi call.
            "httpx": {"level": "WARNING"},
        },
    }


def gunicorn_logging_config() -> dict:
    """gunicorn's logconfig_dict (gunicorn.conf.py): its access and error logs go to the
    project's masked handler, in the project's format (AccessLogFilter), instead of gunicorn's
    own, which print the request line as is with a clock of their own."""
    config = logging_config(os.environ.get("LOG_LEVEL", "INFO"))
    for name in ("gunicorn.error", "gunicorn.access"):
        config["loggers"][name] = {"handlers": [], "level": "INFO", "propagate": True}
    return config


def timestamp(record: logging.LogRecord) -> str:
    """The one clock of every log line: KST with its offset, to the millisecond."""
    return datetime.fromtimestamp(record.created, KST).isoformat(timespec="milliseconds")


def _fields(record: logging.LogRecord) -> dict:
    fields = {"ts": timestamp(record), "level": record.levelname, "logger": record.name, "msg": record.getMessage()}
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            fields[key] = value
    return fields


class KeyValueFormatter(logging.Formatter):
    """ts=… level=… logger=… msg="…" key=value …, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(f"{k}={_quote(v)}" for k, v in _fields(record).items())
        if record.exc_info:
            line += "\n" + (record.exc_text or mask_phones_in_text(self.formatException(record.exc_info)))
        return line


class JsonFormatter(logging.Formatter):
    """LOG_FORMAT=json: the same fields as KeyValueFormatter, as one JSON object per line; a
    traceback is the `exc` field (escaped newlines keep it on the line). Values that are not
    JSON types are written as their text, which the masking filters have already masked."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        if record.exc_info:
            fields["exc"] = record.exc_text or mask_phones_in_text(self.formatException(record.exc_info))
        return json.dumps(fields, ensure_ascii=False, default=str)


def _quote(value) -> str:
    # One line per record: a newline in a value (Flower's task list, a multi-line message) is
    # written as \n, as JSON would; a traceback alone follows on lines of its own.
    text = str(value).replace("\n", "\\n").replace("\r", "\\r")
    if not text or any(c in text for c in ' "='):
        return '"' + text.replace('"', '\\"') + '"'
    return text
