"""The Celery app: `celery -A project worker|beat|flower`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from project import kombu_fixes

kombu_fixes.apply()

app = Celery("project")
app.config_from_object("celeryconfig")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _refuse_unsafe_settings(sender: Celery, **_kwargs) -> None:
    from celeryconfig import check_redelivery_safety

    check_redelivery_safety(sender.conf)


@app.task(name="project.ping")
def ping() -> str:
    """A no-op round trip through the broker, the worker and the result backend."""
    return "pong"
