# Load the Celery app with Django, so shared tasks bind to it and
# `celery -A project worker` finds it.
from project.celery import app as celery_app

__all__ = ("celery_app",)
