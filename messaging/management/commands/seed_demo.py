"""A demo academy to try the stack with: `python manage.py seed_demo [--json]`. Idempotent:
the academy is made once (by harness/academies.py, the factory the tests use), and later
runs only print it."""

import json
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from rest_framework.authtoken.models import Token

from harness.academies import make_academy, set_platform_prices
from tenants.models import Tenant

DEMO_SLUG = "demo"
DEMO_USERNAME = "demo-staff"
DEMO_PASSWORD = "demo-password"
DEMO_CREDIT = Decimal("100000")
DEMO_STUDENTS = 20
# Parents' phones 010-1000-0001 …; every other student has one of their own, 010-2000-0001 ….
DEMO_PHONE_BASE = 10_000_000


class Command(BaseCommand):
    help = "Create the demo academy, a staff user with an API token, 20 students, a template and credit."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object (token, tenant, student_ids).")

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
        token, _ = Token.objects.get_or_create(user=get_user_model().objects.get(username=DEMO_USERNAME))
        student_ids = list(tenant.students.order_by("id").values_list("id", flat=True))
        if options["json"]:
            self.stdout.write(json.dumps({"token": token.key, "tenant": tenant.slug, "student_ids": student_ids}))
        else:
            self.stdout.write(f"tenant: {tenant.slug}\ntoken:  {token.key}\nstudents: {len(student_ids)}")
