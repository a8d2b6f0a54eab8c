"""The project clock (project/clock.py): what tests can do with it, and what reads it."""

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from project.clock import KST
from tenants.models import Tenant


def test_a_frozen_clock_stands_still_and_a_set_one_runs_on(clock):
    moment = clock.next_kst(22, 30)

    assert clock.freeze(moment) == clock.now() == moment
    assert clock.kst_now().tzinfo == KST and clock.kst_now().hour == 22

    clock.set(moment + timedelta(days=1))
    later = clock.now()
    assert later - (moment + timedelta(days=1)) < timedelta(minutes=1)
    assert clock.now() >= later

    clock.reset()
    assert abs(clock.now() - timezone.now()) < timedelta(minutes=1)


def test_the_offset_from_the_environment_shifts_every_reading(clock, settings):
    settings.CLOCK_OFFSET_SECONDS = 365 * 24 * 3600

    assert abs(clock.now() - (timezone.now() + timedelta(days=365))) < timedelta(minutes=1)


def test_next_kst_is_strictly_after_the_moment(clock):
    eight = clock.next_kst(8)

    assert clock.next_kst(8, after=eight) == eight + timedelta(days=1)
    assert clock.next_kst(8, after=eight - timedelta(minutes=1)) == eight


def test_a_naive_moment_is_refused(clock):
    with pytest.raises(ValueError, match="aware"):
        clock.freeze(timezone.now().replace(tzinfo=None))


@pytest.mark.django_db
def test_rows_are_dated_by_the_clock(clock):
    moment = clock.freeze(clock.now() + timedelta(days=400))

    tenant = Tenant.objects.create(name="시계 학원", slug="clock")

    assert tenant.created == moment


def test_the_clock_imports_none_of_the_apps_that_read_it():
    source = (Path(settings.BASE_DIR) / "project" / "clock.py").read_text()
    imported = {node.module.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name.split(".")[0] for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import)
                 for alias in node.names}

    assert not imported & {"tenants", "billing", "messaging"}, imported
