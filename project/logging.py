"""Structured (key=value) logs, with phone numbers masked in every record."""

import logging

from tenants.phones import mask_phones_in_text

# Attributes every LogRecord has; anything else came in through `extra=` and is printed.
# Celery adds `data`, a dict repeating its message.
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "data"}


class PhoneMaskingFilter(logging.Filter):
    """Masks phone numbers in the message, its arguments and extra fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_phones_in_text(str(record.msg))
        if isinstance(record.args, dict):
            record.args = {k: _mask(v) for k, v in record.args.items()}
        elif record.args:
            record.args = tuple(_mask(a) for a in record.args)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _mask(value))
        return True


def _mask(value):
    return mask_phones_in_text(value) if isinstance(value, str) else value


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
            line += "\n" + mask_phones_in_text(self.formatException(record.exc_info))
        return line


def _quote(value) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "='):
        return '"' + text.replace('"', '\\"') + '"'
    return text
