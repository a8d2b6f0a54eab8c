"""One format and one clock for every line: the project's key=value or, with LOG_FORMAT=json,
one JSON object per line, masked alike; gunicorn's access line as fields of that format; and
beat's idle housekeeping quiet (DEBUG) while a run that did something stays at INFO."""

import io
import json
import logging
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils.module_loading import import_string
from gunicorn.glogging import Logger as GunicornLogger
from gunicorn.glogging import SafeAtoms

import celeryconfig
from project.celery import app
from project.logging import gunicorn_logging_config, log_format, logging_config

RAW_MOBILE = re.compile(r"(?<!\d)01[016789]-?\d{3,4}-?\d{4}(?!\d)")
KST_TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+09:00"


def _console(config: dict) -> tuple[logging.Handler, io.StringIO]:
    """The console handler a logging config describes: its filters in order and its formatter."""
    spec = config["handlers"]["console"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    for name in spec["filters"]:
        handler.addFilter(import_string(config["filters"][name]["()"])())
    handler.setFormatter(import_string(config["formatters"][spec["formatter"]]["()"])())
    return handler, stream


def _emit(handler: logging.Handler, name: str, level: int, msg: str, *args, **extra) -> None:
    record = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    handler.handle(record)


def test_json_lines_are_one_object_each_with_the_kv_fields_and_phone_numbers_masked():
    handler, stream = _console(logging_config("INFO", "json"))

    _emit(handler, "messaging.test", logging.WARNING, "send failed to %s", "010-1234-5678", recipient="01098765432")
    try:
        raise ValueError("no such number 01055556666")
    except ValueError as error:
        record = logging.LogRecord("messaging.test", logging.ERROR, __file__, 1, "failed", (), (ValueError, error,
                                                                                               error.__traceback__))
        handler.handle(record)

    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert RAW_MOBILE.search(stream.getvalue()) is None
    assert first["msg"] == "send failed to 010****5678" and first["recipient"] == "010****5432"
    assert (first["level"], first["logger"]) == ("WARNING", "messaging.test")
    assert re.fullmatch(KST_TS, first["ts"])
    assert "ValueError" in second["exc"] and "010****6666" in second["exc"]


def test_key_value_lines_carry_the_same_clock():
    handler, stream = _console(logging_config("INFO", "kv"))

    _emit(handler, "messaging.test", logging.INFO, "hello")

    assert re.match(rf"ts={KST_TS} level=INFO logger=messaging.test msg=hello$", stream.getvalue().strip())


def test_log_format_refuses_an_unknown_value(monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        log_format()
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    assert log_format() == "json"


def _access_record(handler: logging.Handler, path: str, query: str = "") -> None:
    """gunicorn's access call, with the atoms gunicorn itself builds (glogging.Logger.atoms)."""
    resp = SimpleNamespace(status="202 Accepted", sent=120, headers=[])
    environ = {"REQUEST_METHOD": "POST", "RAW_URI": path, "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": path,
               "QUERY_STRING": query, "REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "curl/8.0"}
    gunicorn = SimpleNamespace(_get_user=lambda environ: None, now=lambda: "[30/Nov/2026:11:17:12 +0000]")
    atoms = SafeAtoms(GunicornLogger.atoms(gunicorn, resp, [], environ, timedelta(milliseconds=42)))
    from gunicorn.config import AccessLogFormat

    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, AccessLogFormat.default, (atoms,), None)
    handler.handle(record)


@pytest.mark.parametrize("fmt", ["kv", "json"])
def test_the_access_line_is_in_the_project_format_with_its_clock_only(monkeypatch, settings, fmt):
    monkeypatch.setenv("LOG_FORMAT", fmt)
    handler, stream = _console(gunicorn_logging_config())

    _access_record(handler, f"/api/v1/solapi/reports/{settings.SOLAPI_WEBHOOK_SECRET}/", "to=01012345678")

    line = stream.getvalue().strip()
    assert "\n" not in line and "30/Nov/2026" not in line  # gunicorn's own clock is gone
    assert settings.SOLAPI_WEBHOOK_SECRET not in line and RAW_MOBILE.search(line) is None
    fields = json.loads(line) if fmt == "json" else dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    fields = {k: str(v).strip('"') for k, v in fields.items()}
    assert fields["logger"] == "gunicorn.access" and fields["msg"] == "request"
    assert (fields["method"], fields["status"], fields["duration_ms"]) == ("POST", "202", "42")
    assert fields["path"] == "/api/v1/solapi/reports/[secret]/"
    assert re.fullmatch(KST_TS, fields["ts"])


def test_beat_tasks_store_no_results_and_pipeline_tasks_do():
    beat_tasks = {entry["task"] for entry in celeryconfig.beat_schedule.values()}
    app.loader.import_default_modules()

    assert beat_tasks and beat_tasks <= celeryconfig.HOUSEKEEPING_TASKS
    for name in beat_tasks | {"celery.backend_cleanup"}:
        assert app.tasks[name].ignore_result, name
    for name in ("messaging.dispatch", "messaging.reserve_credit", "messaging.send_to_solapi", "messaging.finalize"):
        assert not app.tasks[name].ignore_result, name


HOUSEKEEPING = "messaging.redispatch_undispatched"
SUCCEEDED = "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s"
RECEIVED = "Task %(name)s[%(id)s] received"


def _celery_lines(handler: logging.Handler) -> None:
    _emit(handler, "celery.beat", logging.INFO, "Scheduler: Sending due task %s (%s)", "redispatch", HOUSEKEEPING)
    _emit(handler, "celery.worker.strategy", logging.INFO, RECEIVED, {"name": HOUSEKEEPING, "id": "a1"})
    _emit(handler, "celery.app.trace", logging.INFO, SUCCEEDED,
          {"name": HOUSEKEEPING, "id": "a1", "runtime": 0.01, "return_value": "0"})
    _emit(handler, "celery.app.trace", logging.INFO, SUCCEEDED,
          {"name": "messaging.reconcile_reports", "id": "a2", "runtime": 0.01,
           "return_value": "{'polled': 0, 'expired': 0}"})
    # A run that did something, and the pipeline's own tasks, stay at INFO.
    _emit(handler, "celery.app.trace", logging.INFO, SUCCEEDED,
          {"name": HOUSEKEEPING, "id": "a3", "runtime": 0.01, "return_value": "2"})
    _emit(handler, "celery.app.trace", logging.INFO, SUCCEEDED,
          {"name": "messaging.finalize", "id": "a4", "runtime": 0.01, "return_value": "0"})
    _emit(handler, "celery.worker.strategy", logging.INFO, RECEIVED, {"name": "messaging.finalize", "id": "a4"})


def test_idle_housekeeping_logs_nothing_at_info_and_a_useful_run_still_does():
    handler, stream = _console(logging_config("INFO", "kv"))

    _celery_lines(handler)

    lines = stream.getvalue().splitlines()
    assert [re.search(r"msg=\"?Task (\S+)\[(\w+)\]", line).groups() for line in lines] == [
        (HOUSEKEEPING, "a3"), ("messaging.finalize", "a4"), ("messaging.finalize", "a4")]
    assert all("level=INFO" in line for line in lines)


def test_idle_housekeeping_shows_at_debug_when_debug_is_on():
    handler, stream = _console(logging_config("DEBUG", "kv"))
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        _celery_lines(handler)
    finally:
        root.setLevel(previous)

    lines = stream.getvalue().splitlines()
    assert len(lines) == 7
    assert sum("level=DEBUG" in line for line in lines) == 4


def test_a_multi_line_message_stays_on_one_line():
    handler, stream = _console(logging_config("INFO", "kv"))

    _emit(handler, "flower.command", logging.INFO, "Registered tasks: \n['a',\n 'b']")

    assert stream.getvalue().count("\n") == 1
    assert "msg=\"Registered tasks: \\n['a',\\n 'b']\"" in stream.getvalue()
