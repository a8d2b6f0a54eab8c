"""Structured (key=value) logs, with phone numbers masked in every record."""

import logging

from tenants.phones import PHONE_IN_TEXT, mask_phones_in_text

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
