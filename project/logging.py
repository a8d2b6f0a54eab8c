"""Structured (key=value) logs, with phone numbers and the webhook secret masked in every
record: the project's own, Django's request logging and gunicorn's access and error logs
(gunicorn.conf.py) alike."""

import logging
import re

from django.conf import settings

from tenants.phones import PHONE_IN_TEXT, mask_phones_in_text

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


def logging_config(level: str = "INFO") -> dict:
    """The project's LOGGING (project/settings.py): one console handler, key=value lines,
    secrets then phone numbers masked. Django's own handlers are emptied so that its request
    logs reach the masked handler only (its default console handler prints paths as they came)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "mask_secrets": {"()": "project.logging.SecretMaskingFilter"},
            "mask_phones": {"()": "project.logging.PhoneMaskingFilter"},
        },
        "formatters": {"kv": {"()": "project.logging.KeyValueFormatter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "kv",
                        "filters": ["mask_secrets", "mask_phones"]},
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
    project's masked handler instead of gunicorn's own, which print the request line as is."""
    config = logging_config()
    for name in ("gunicorn.error", "gunicorn.access"):
        config["loggers"][name] = {"handlers": [], "level": "INFO", "propagate": True}
    return config


class KeyValueFormatter(logging.Formatter):
    """ts=… level=… logger=… msg="…" key=value …, one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                fields[key] = value
        line = " ".join(f"{k}={_quote(v)}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + (record.exc_text or mask_phones_in_text(self.formatException(record.exc_info)))
        return line


def _quote(value) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "='):
        return '"' + text.replace('"', '\\"') + '"'
    return text
