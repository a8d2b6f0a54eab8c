"""Reads of an academy's own rows: students (searched and filtered), classes, templates.

Every function takes the tenant first and reads only its rows, so another academy's ids
simply find nothing.
"""

import re
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from tenants.models import AlimTalkTemplate, MarketingConsent, RecipientKind, SchoolClass, Student, Tenant
from tenants.phones import mask_phone


class ConsentFilter:
    """`consent=` of students_for: whether the student or the parent has a marketing
    consent in force (recorded and not withdrawn), i.e. whether an ad may reach them."""

    GIVEN = "given"
    MISSING = "missing"
    CHOICES = (GIVEN, MISSING)


# Digits, with the separators people type in phone numbers: a search for a phone's end.
_PHONE_TERM = re.compile(r"[\d\s-]+")


def students_for(tenant: Tenant, *, search: str = "", class_id: int | None = None, grade: int | None = None,
                 has_parent_phone: bool | None = None, consent: str | None = None) -> QuerySet[Student]:
    """The academy's students, by name then id. `search` matches a name (contains) or, when
    it is digits, the end of the student's or the parent's phone (a whole number is never
    needed, and never logged in a URL). Filters left at None do not filter."""
    students = Student.objects.filter(tenant=tenant)
    term = search.strip()
    if term and _PHONE_TERM.fullmatch(term):
        digits = re.sub(r"\D", "", term)
        students = students.filter(Q(phone__endswith=digits) | Q(parent_phone__endswith=digits))
    elif term:
        students = students.filter(name__icontains=term)
    if class_id is not None:
        students = students.filter(classes__id=class_id, classes__tenant=tenant)
    if grade is not None:
        students = students.filter(grade=grade)
    if has_parent_phone is not None:
        students = students.exclude(parent_phone="") if has_parent_phone else students.filter(parent_phone="")
    if consent is not None:
        in_force = Exists(MarketingConsent.objects.filter(
            student=OuterRef("pk"), marketing_consented_at__isnull=False, withdrawn_at__isnull=True))
        students = students.filter(in_force) if consent == ConsentFilter.GIVEN else students.exclude(in_force)
    return students.order_by("name", "id")


def student_rows(students: list[Student]) -> list[dict[str, Any]]:
    """Students as staff see them in a list: numbers masked, their classes, their consents
    (two queries for the whole page)."""
    ids = [s.id for s in students]
    classes, consents = class_ids_of(ids), consents_of(ids)
    return [{
        "id": s.id, "name": s.name, "grade": s.grade, "phone": mask_phone(s.phone),
        "parent_phone": mask_phone(s.parent_phone), "class_ids": classes[s.id],
        "consent": {kind: consents.get(s.id, {}).get(kind, False) for kind in RecipientKind.values},
    } for s in students]


def class_ids_of(student_ids: list[int]) -> dict[int, list[int]]:
    """Student id → the ids of the classes they attend (one query for a page of students)."""
    memberships = SchoolClass.students.through.objects.filter(student_id__in=student_ids)
    classes: dict[int, list[int]] = {i: [] for i in student_ids}
    for student_id, class_id in memberships.order_by("schoolclass_id").values_list("student_id", "schoolclass_id"):
        classes[student_id].append(class_id)
    return classes


def consents_of(student_ids: list[int]) -> dict[int, dict[str, bool]]:
    """Student id → {recipient kind: marketing consent in force} for those who have a row."""
    result: dict[int, dict[str, bool]] = {}
    for consent in MarketingConsent.objects.filter(student_id__in=student_ids):
        result.setdefault(consent.student_id, {})[consent.recipient] = consent.allows_ads
    return result


def classes_for(tenant: Tenant) -> QuerySet[SchoolClass]:
    """The academy's classes by name, each with `student_count`."""
    return SchoolClass.objects.filter(tenant=tenant).annotate(student_count=Count("students")).order_by("name", "id")


def class_students(tenant: Tenant, class_ids: list[int]) -> tuple[list[int], list[int]]:
    """(the ids of the students of these classes, by class then name; the class ids that are
    not the academy's). Another academy's class looks like one that does not exist."""
    wanted = list(dict.fromkeys(class_ids))
    found = set(SchoolClass.objects.filter(tenant=tenant, id__in=wanted).values_list("id", flat=True))
    rows = (SchoolClass.students.through.objects.filter(schoolclass_id__in=found)
            .order_by("schoolclass__name", "schoolclass_id", "student__name", "student_id")
            .values_list("student_id", flat=True))
    return list(dict.fromkeys(rows)), [i for i in wanted if i not in found]


def templates_for(tenant: Tenant) -> QuerySet[AlimTalkTemplate]:
    """The academy's AlimTalk templates, approved ones first."""
    return AlimTalkTemplate.objects.filter(tenant=tenant).order_by("status", "name", "id")
