"""A demo academy to try the stack with: `python manage.py seed_demo [--json]`. Idempotent:
the academy is made once (by harness/academies.py, the factory the tests use), and later
runs only print it.

With DEBUG on (a development machine) it also makes a dev admin login for `/admin/` (the
demo staff user is not an admin): `dev-admin` with a generated password, kept in
var/dev-admin-password so that every run prints the same one (`make run`'s banner shows it).
With DEBUG off no admin is made: production admins are created by a person, on purpose."""

import json
import secrets
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from rest_framework.authtoken.models import Token

from harness.academies import make_academy, make_class, set_platform_prices
from tenants.models import Student, Tenant

DEMO_SLUG = "demo"
DEMO_USERNAME = "demo-staff"
DEMO_PASSWORD = "demo-password"
DEMO_CREDIT = Decimal("100000")
DEMO_STUDENTS = 20
# Parents' phones 010-1000-0001 …; every other student has one of their own, 010-2000-0001 ….
DEMO_PHONE_BASE = 10_000_000
DEV_ADMIN_USERNAME = "dev-admin"
# Under var/ (git-ignored), readable by its owner only.
DEV_ADMIN_PASSWORD_FILE = Path(settings.BASE_DIR) / "var" / "dev-admin-password"
# Classes (반) by name → which students (by their place, from 0) attend: they overlap, as
# real ones do (a student in 수학 A반 and 영어 B반), so a send to two classes shows the dedup.
DEMO_CLASSES = {"수학 A반": range(8), "영어 B반": range(6, 14), "국어 C반": range(12, 20)}
# 학년 (7 = 중1 … 9 = 중3), by the student's place.
DEMO_GRADES = (7, 8, 9)


class Command(BaseCommand):
    help = "Create the demo academy, a staff user with an API token, 20 students in 3 classes, a template and credit."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true",
                            help="Print one JSON object (token, tenant, student_ids, class_ids, and admin with DEBUG "
                                 "on).")

    @transaction.atomic
    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            # Platform prices only with the academy: a later run must not undo an operator's prices.
            set_platform_prices()
            tenant = make_academy(
                DEMO_SLUG, name="데모 학원", students=DEMO_STUDENTS, credit=DEMO_CREDIT, prices=None,
                username=DEMO_USERNAME, password=DEMO_PASSWORD, template_id="TPL_ATTENDANCE",
                phone_base=DEMO_PHONE_BASE, own_phones=True, kakao_pf_id="KA01PF0000DEMO",
                ad_opt_out_number="0801234567",
            ).tenant
            _classes_and_grades(tenant)
        token, _ = Token.objects.get_or_create(user=get_user_model().objects.get(username=DEMO_USERNAME))
        student_ids = list(tenant.students.order_by("id").values_list("id", flat=True))
        class_ids = list(tenant.classes.order_by("name").values_list("id", flat=True))
        demo = {"token": token.key, "tenant": tenant.slug, "student_ids": student_ids, "class_ids": class_ids}
        if settings.DEBUG:
            demo["admin"] = dev_admin()
        if options["json"]:
            self.stdout.write(json.dumps(demo))
        else:
            self.stdout.write(f"tenant: {tenant.slug}\ntoken:  {token.key}\nstudents: {len(student_ids)}\n"
                              f"classes: {len(class_ids)}")
            if "admin" in demo:
                self.stdout.write(f"admin:  /admin/ as {demo['admin']['username']} / {demo['admin']['password']}")


def dev_admin() -> dict[str, str]:
    """The dev admin login (DEBUG only): made once with a generated password; the password
    file keeps it. A missing file (or a user whose password differs) gets a new one."""
    password = DEV_ADMIN_PASSWORD_FILE.read_text().strip() if DEV_ADMIN_PASSWORD_FILE.exists() else ""
    user, _ = get_user_model().objects.get_or_create(
        username=DEV_ADMIN_USERNAME, defaults={"is_staff": True, "is_superuser": True})
    if not password or not user.check_password(password):
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
        DEV_ADMIN_PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
        DEV_ADMIN_PASSWORD_FILE.touch(mode=0o600)
        DEV_ADMIN_PASSWORD_FILE.write_text(password + "\n")
    return {"username": DEV_ADMIN_USERNAME, "password": password}


def _classes_and_grades(tenant: Tenant) -> None:
    students = list(tenant.students.order_by("id"))
    for place, student in enumerate(students):
        student.grade = DEMO_GRADES[place % len(DEMO_GRADES)]
    Student.objects.bulk_update(students, ["grade"])
    for name, places in DEMO_CLASSES.items():
        make_class(tenant, name, [students[p] for p in places if p < len(students)])
