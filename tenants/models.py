"""Academies (tenants), their staff, students, classes (반) and AlimTalk templates."""

import re
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from project.clock import ClockDateTimeField
from tenants.phones import InvalidPhone, is_valid_sender, normalize_phone


class SenderStatus(models.TextChoices):
    UNVERIFIED = "unverified", "미인증 (unverified)"
    VERIFIED = "verified", "인증됨 (verified)"
    # Solapi answered 1062/2062/3059: the number is not registered with the carriers.
    REJECTED = "rejected", "거부됨 (rejected by Solapi)"


class Tenant(models.Model):
    name = models.CharField("학원명", max_length=100)
    slug = models.SlugField("식별자 (slug)", unique=True)
    messaging_sender = models.CharField(
        "발신번호", max_length=11, blank=True, help_text="Digits only, registered with Solapi."
    )
    messaging_sender_status = models.CharField(
        "발신번호 상태", max_length=16, choices=SenderStatus.choices, default=SenderStatus.UNVERIFIED
    )
    messaging_sender_status_reason = models.CharField("발신번호 상태 사유", max_length=200, blank=True)
    messaging_sender_status_changed = models.DateTimeField("발신번호 상태 변경 시각", null=True, blank=True)
    messaging_is_active = models.BooleanField("발송 사용", default=True)
    kakao_pf_id = models.CharField("카카오 채널 (pfId)", max_length=64, blank=True)
    # The academy's free 080 opt-out number, required at the end of every ad.
    ad_opt_out_number = models.CharField("080 수신거부 번호", max_length=11, blank=True)
    created = ClockDateTimeField("생성 시각", auto_now_add=True)

    class Meta:
        verbose_name = "학원"
        verbose_name_plural = "학원"
        ordering = ["name"]
        # Admin actions check these when they run (tenants/admin.py).
        permissions = [("reregister_sender", "Can mark a rejected sender number registered again")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.messaging_sender = "".join(c for c in self.messaging_sender if c.isdigit())
        if self.messaging_sender and not is_valid_sender(self.messaging_sender):
            raise ValidationError({"messaging_sender": "발신번호 형식이 아닙니다 (not a valid sender number)."})
        self.ad_opt_out_number = "".join(c for c in self.ad_opt_out_number if c.isdigit())
        # 080-XXX-XXXX or 080-XXXX-XXXX: an ad footer with a cut-off number is no opt-out.
        if self.ad_opt_out_number and not re.fullmatch(r"080[0-9]{7,8}", self.ad_opt_out_number):
            raise ValidationError(
                {"ad_opt_out_number": "080 수신거부 번호(10~11자리)가 아닙니다 (not an 080 number of 10-11 digits)."}
            )


class Membership(models.Model):
    """A user is staff of an academy: every member may send for it (no roles yet)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships", verbose_name="사용자"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships", verbose_name="학원")
    created = ClockDateTimeField("생성 시각", auto_now_add=True)

    class Meta:
        verbose_name = "학원 직원"
        verbose_name_plural = "학원 직원"
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="one_membership_per_tenant")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant}"


class Student(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="students", verbose_name="학원")
    name = models.CharField("이름", max_length=50)
    phone = models.CharField("학생 전화번호", max_length=11, blank=True)
    parent_phone = models.CharField("학부모 전화번호", max_length=11, blank=True)
    # 학년: 1-6 초등, 7-9 중등, 10-12 고등 (school year counted from the first grade of
    # elementary school), so one filter covers every academy; empty when not recorded.
    grade = models.PositiveSmallIntegerField("학년", null=True, blank=True)
    created = ClockDateTimeField("생성 시각", auto_now_add=True)

    class Meta:
        verbose_name = "학생"
        verbose_name_plural = "학생"
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["tenant", "id"])]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        for field in ("phone", "parent_phone"):
            try:
                setattr(self, field, normalize_phone(getattr(self, field)))
            except InvalidPhone as exc:
                errors[field] = str(exc)
        if errors:
            raise ValidationError(errors)


class SchoolClass(models.Model):
    """A class (반) of the academy: staff send to a class far more often than to hand-picked
    students. A student may attend several classes (수학 A반 and 영어 B반)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="classes", verbose_name="학원")
    name = models.CharField("반 이름", max_length=50)
    students = models.ManyToManyField(Student, related_name="classes", blank=True, verbose_name="학생")
    created = ClockDateTimeField("생성 시각", auto_now_add=True)

    class Meta:
        verbose_name = "반"
        verbose_name_plural = "반"
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="class_name_per_tenant")]

    def __str__(self) -> str:
        return self.name


class RecipientKind(models.TextChoices):
    STUDENT = "student", "학생"
    PARENT = "parent", "학부모"


# Consent must be re-confirmed every two years (정보통신망법 §50⑧).
CONSENT_VALID_FOR = timedelta(days=730)


class MarketingConsent(models.Model):
    """A recipient's consent to advertising (정보통신망법 §50): recorded with its time,
    per student or parent. Night-time ads (21:00–08:00) need a separate consent, and
    every consent must be re-confirmed every two years."""

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="consents", verbose_name="학생")
    recipient = models.CharField("수신자", max_length=8, choices=RecipientKind.choices)
    marketing_consented_at = models.DateTimeField("광고 수신 동의 시각", null=True, blank=True)
    night_consented_at = models.DateTimeField("야간 광고 수신 동의 시각", null=True, blank=True)
    withdrawn_at = models.DateTimeField("동의 철회 시각", null=True, blank=True)
    updated = ClockDateTimeField("변경 시각", auto_now=True)

    class Meta:
        verbose_name = "광고 수신 동의"
        verbose_name_plural = "광고 수신 동의"
        constraints = [models.UniqueConstraint(fields=["student", "recipient"], name="one_consent_per_recipient")]

    def __str__(self) -> str:
        return f"{self.student} ({self.recipient})"

    @property
    def allows_ads(self) -> bool:
        return self.marketing_consented_at is not None and self.withdrawn_at is None

    @property
    def allows_night_ads(self) -> bool:
        return self.allows_ads and self.night_consented_at is not None


class TemplateStatus(models.TextChoices):
    PENDING = "pending", "검수 중 (in review)"
    APPROVED = "approved", "승인 (approved)"
    REJECTED = "rejected", "반려 (rejected)"


class AlimTalkTemplate(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="alimtalk_templates", verbose_name="학원")
    solapi_template_id = models.CharField("Solapi 템플릿 ID", max_length=64)
    name = models.CharField("템플릿 이름", max_length=100)
    # The approved text, with #{변수} placeholders; a sent AlimTalk must match it.
    content = models.TextField("내용")
    status = models.CharField(
        "검수 상태", max_length=16, choices=TemplateStatus.choices, default=TemplateStatus.PENDING
    )
    created = ClockDateTimeField("생성 시각", auto_now_add=True)

    class Meta:
        verbose_name = "알림톡 템플릿"
        verbose_name_plural = "알림톡 템플릿"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "solapi_template_id"], name="template_id_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.solapi_template_id})"
