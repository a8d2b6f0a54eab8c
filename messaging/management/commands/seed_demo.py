"""A demo academy to try the stack with: `python manage.py seed_demo [--json]`. Idempotent."""

import json
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from rest_framework.authtoken.models import Token

from billing.ledger import account_for, top_up
from billing.models import MessageType, Price
from tenants.models import AlimTalkTemplate, Membership, SenderStatus, Student, TemplateStatus, Tenant

DEMO_SLUG = "demo"
# The number `make run` registers in the Solapi sandbox (Procfile.dev).
DEMO_SENDER = "0212345678"
DEMO_USERNAME = "demo-staff"
DEMO_CREDIT = Decimal("100000")
# Platform prices in KRW, roughly Solapi's list prices.
DEFAULT_PRICES = {MessageType.SMS: "13", MessageType.LMS: "29", MessageType.MMS: "60", MessageType.ATA: "9"}
NAMES = ["김민준", "이서연", "박도윤", "최서윤", "정하준", "강지우", "조시우", "윤하은", "장주원", "임지호",
         "한예준", "오수아", "서도현", "신지안", "권건우", "황채원", "안우진", "송다은", "류현우", "전서아"]


class Command(BaseCommand):
    help = "Create the demo academy, a staff user with an API token, 20 students, a template and credit."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object (token, tenant, student_ids).")

    @transaction.atomic
    def handle(self, *args, **options):
        for message_type, amount in DEFAULT_PRICES.items():
            Price.objects.get_or_create(message_type=message_type, defaults={"amount": Decimal(amount)})
        tenant, _ = Tenant.objects.get_or_create(
            slug=DEMO_SLUG,
            defaults={"name": "데모 학원", "messaging_sender": DEMO_SENDER, "kakao_pf_id": "KA01PF0000DEMO",
                      "messaging_sender_status": SenderStatus.VERIFIED, "ad_opt_out_number": "0801234567"},
        )
        user, created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        if created:
            user.set_password("demo-password")
            user.save()
        Membership.objects.get_or_create(user=user, tenant=tenant)
        token, _ = Token.objects.get_or_create(user=user)
        for index, name in enumerate(NAMES, start=1):
            Student.objects.get_or_create(
                tenant=tenant, name=name,
                defaults={"parent_phone": f"0101000{index:04d}", "phone": f"0102000{index:04d}" if index % 2 else ""},
            )
        AlimTalkTemplate.objects.get_or_create(
            tenant=tenant, solapi_template_id="TPL_ATTENDANCE",
            defaults={"name": "등원 알림", "content": "#{이름} 학생이 학원에 도착했습니다.",
                      "status": TemplateStatus.APPROVED},
        )
        if account_for(tenant).balance == 0:
            top_up(tenant=tenant, amount=DEMO_CREDIT, memo="demo credit")
        student_ids = list(tenant.students.order_by("id").values_list("id", flat=True))
        if options["json"]:
            self.stdout.write(json.dumps({"token": token.key, "tenant": tenant.slug, "student_ids": student_ids}))
        else:
            self.stdout.write(f"tenant: {tenant.slug}\ntoken:  {token.key}\nstudents: {len(student_ids)}")
