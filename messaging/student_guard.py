"""A message's student exists when its row is written, without a foreign-key constraint.

A send writes up to 10,000 message rows in its request (issue 17). With `Message.student`
constrained, PostgreSQL checked the key of every row at commit, one row at a time: some 80 ms
of a 10,000-recipient request (docs/capacity.md, "The message table"). What the constraint
guaranteed, that a message never names a deleted student, these two locks guarantee instead:

- **A send** (and a staff resend) locks its students' rows against deletion in its own
  transaction (`FOR KEY SHARE`, in one statement, what the constraint's check took row by
  row) and counts them: a student deleted since the send read them is missing, and the send
  is refused whole (404 `student_not_found`), nothing written.
- **A deletion** (the admin's, or an academy's cascade) first locks the students it deletes
  (`FOR UPDATE`, in id order, before Django sets their messages' `student` to NULL). It waits for a send
  that holds them, then sees that send's committed messages and clears them too. A send that
  comes after waits for the deletion, then finds its students missing.

Both lock in id order, so a send and a deletion of several students do not deadlock. SQLite
has no row locks; its writers are serialized, and the send's count sees a committed deletion.
tests/api/test_message_integrity.py races the two on PostgreSQL.
"""

from collections.abc import Collection

from django.db import connection
from django.db.models import QuerySet
from django.db.models.signals import pre_delete

from messaging.compose.refusals import Refusal, RefusalCode
from project.sql import array_value, on_postgresql
from tenants.models import Student


def lock_students_for_messages(student_ids: Collection[int | None]) -> None:
    """Call inside the transaction that writes messages for these students (None: no student).
    Raises Refusal STUDENT_NOT_FOUND, naming them, when any has been deleted."""
    wanted = sorted({i for i in student_ids if i is not None})
    if not wanted:
        return
    if on_postgresql():
        # The ORM has no FOR KEY SHARE (the lock a foreign key's check takes: it does not block
        # edits of the student's other columns).
        table = connection.ops.quote_name(Student._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {table} WHERE id = ANY(%s::bigint[]) ORDER BY id FOR KEY SHARE",
                           [array_value(wanted)])
            found = {row[0] for row in cursor.fetchall()}
    else:
        found = set(Student.objects.filter(id__in=wanted).values_list("id", flat=True))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise Refusal(RefusalCode.STUDENT_NOT_FOUND, student_ids=", ".join(map(str, missing)),
                      extra={"student_ids": missing})


def lock_student_before_deletion(sender, instance: Student, using: str, origin=None, **kwargs) -> None:
    """pre_delete of a Student: inside the deletion's transaction, before its messages are
    cleared (Django's collector sends every pre_delete first). A queryset's deletion (the
    admin's "delete selected") locks all its students at its first signal, in id order;
    otherwise the one student."""
    students = Student.objects.using(using).select_for_update().order_by("id")
    if isinstance(origin, QuerySet) and origin.model is Student:
        if getattr(origin, _LOCKED, False):
            return
        list(students.filter(id__in=origin.values("id")).values_list("id"))
        setattr(origin, _LOCKED, True)
        return
    list(students.filter(id=instance.id).values_list("id"))


# Marks a deleted queryset whose students are locked already (its later signals do nothing).
_LOCKED = "_student_guard_locked"


def connect() -> None:
    pre_delete.connect(lock_student_before_deletion, sender=Student, dispatch_uid="student_guard")
