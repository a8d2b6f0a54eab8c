"""The life of a send, as tables.

A SendRequest is what staff asked for. The API turns it into one Message per
recipient (skipped ones included, with their reason) in one transaction. The
worker splits the pending messages into Chunks; each chunk is one Solapi group and
one chain of tasks: reserve credit → send → finalize. Every Solapi call a chunk
makes is a DeliveryAttempt; every outcome a message reaches is a MessageOutcome
row; delivery reports arrive as DeliveryReports, deduplicated by Solapi's event id.
"""

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Case, F, Q, Value, When

from billing.models import MONEY, MessageType
from messaging.failures import FailureClass
from messaging.pipeline.queues import WorkerQueues
from project import clock
from project.clock import ClockDateTimeField
from tenants.models import AlimTalkTemplate, RecipientKind, Student, Tenant
from tenants.phones import mask_phone


class MessageMode(models.TextChoices):
    SMS = "sms", "문자 (SMS/LMS)"
    ALIMTALK = "alimtalk", "알림톡 (AlimTalk)"
    # AlimTalk, and Solapi falls back to SMS/LMS when Kakao cannot deliver it.
    BOTH = "both", "알림톡 + 문자 대체발송 (AlimTalk with SMS fallback)"


class SendTo(models.TextChoices):
    PARENT = "parent", "학부모 (parent)"
    STUDENT = "student", "학생 (student)"
    BOTH = "both", "학생과 학부모 (both)"


class Purpose(models.TextChoices):
    INFO = "info", "정보성 (informational)"
    AD = "ad", "광고성 (advertising)"


class SendRequest(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="send_requests", verbose_name="학원")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name="요청자"
    )
    mode = models.CharField("발송 방식", max_length=16, choices=MessageMode.choices)
    send_to = models.CharField("수신 대상", max_length=16, choices=SendTo.choices)
    purpose = models.CharField("목적", max_length=8, choices=Purpose.choices, default=Purpose.INFO)
    body = models.TextField("본문")
    subject = models.CharField("제목", max_length=100, blank=True)
    template = models.ForeignKey(
        AlimTalkTemplate, null=True, blank=True, on_delete=models.PROTECT, verbose_name="알림톡 템플릿"
    )
    alimtalk_replacements = models.JSONField("알림톡 치환 값", default=dict, blank=True)
    # Replays of the same key return the stored response; a different body is refused.
    # NULL, not "": requests without a key must not collide in the unique constraint.
    idempotency_key = models.CharField("멱등 키 (Idempotency-Key)", max_length=100, null=True, blank=True)  # noqa: DJ001
    fingerprint = models.CharField("요청 지문", max_length=64)
    response = models.JSONField("저장된 응답", default=dict, blank=True)
    # Which SQS queue its tasks go to (messaging/pipeline/queues.py).
    queue = models.CharField("SQS 큐", max_length=80)
    estimated_cost = models.DecimalField("예상 비용", **MONEY)
    # Its messages to be sent, as accepted (the answer's `accepted`): what the daily limit sums
    # (messaging/compose/limits.py), rather than counting the day's message rows at every send.
    # 0 on requests older than two days when migration messaging 0022 ran (the limit reads a day).
    accepted_count = models.PositiveIntegerField("접수 건수", default=0)
    # The outbox: null until the dispatch task was published (a small send: or one due on its
    # queue covers it, messaging/pipeline/outbox.py). Beat re-publishes requests that stay
    # undispatched (broker down at request time).
    dispatched = models.DateTimeField("작업 발행 시각", null=True, blank=True)
    dispatch_attempts = models.PositiveIntegerField("발행 시도 횟수", default=0)
    dispatch_error = models.CharField("발행 오류", max_length=300, blank=True)
    # Message counts by status, recomputed (never incremented) as messages move.
    counts = models.JSONField("상태별 건수", default=dict, blank=True)
    completed = models.DateTimeField("완료 시각", null=True, blank=True)
    # Staff cancelled it (messaging/pipeline/cancellation.py): what had not gone to Solapi
    # failed as `cancelled`, its credit released; what had, finishes.
    cancelled = models.DateTimeField("취소 시각", null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name="취소한 사람",
    )
    # A scheduled send: its messages wait (not_before) until then; beat releases them.
    send_at = models.DateTimeField("예약 발송 시각", null=True, blank=True)
    created = ClockDateTimeField("요청 시각", auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "발송 요청"
        verbose_name_plural = "발송 요청"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="one_request_per_idempotency_key",
            )
        ]
        indexes = [models.Index(fields=["dispatched", "created"]),
                   # The daily limit: an academy's requests of the day.
                   models.Index(fields=["tenant", "created"], name="send_request_tenant_day")]

    def __str__(self) -> str:
        return f"send request {self.id} ({self.tenant})"


class SendRequestStatus(models.TextChoices):
    """Where a send request stands as staff see it; derived from its timestamps
    (messaging/selectors.py), never stored."""

    SCHEDULED = "scheduled", "예약됨 (scheduled)"
    SENDING = "sending", "발송 중 (sending)"
    COMPLETED = "completed", "완료 (completed)"
    CANCELLED = "cancelled", "취소됨 (cancelled)"


class ChunkStatus(models.TextChoices):
    QUEUED = "queued", "대기 (chain published)"
    HELD = "held", "충전금 예약 (credit held)"
    # The group exists at Solapi. Once a send of it may have reached Solapi, only Solapi
    # knows whether it went out: the chunk is settled by re-sending the same group (409 = sent).
    SENDING = "sending", "발송 중 (sending)"
    SENT = "sent", "접수 완료 (accepted by Solapi)"
    FINALIZED = "finalized", "정산 완료 (finalized)"


class Chunk(models.Model):
    send_request = models.ForeignKey(
        SendRequest, on_delete=models.CASCADE, related_name="chunks", verbose_name="발송 요청"
    )
    index = models.PositiveIntegerField("순번")
    status = models.CharField("상태", max_length=16, choices=ChunkStatus.choices, default=ChunkStatus.QUEUED)
    # Shared by the chunks of small requests sent together (messaging/pipeline/express.py).
    solapi_group_id = models.CharField("Solapi 그룹 ID", max_length=64, blank=True, db_index=True)
    # When its chain was published. A broadcast's chunks are published a few at a time, as
    # its academy's fair share allows (messaging/pipeline/pacing.py).
    published = models.DateTimeField("발행 시각", null=True, blank=True)
    messages_added = models.DateTimeField("메시지 등록 시각", null=True, blank=True)
    sent = models.DateTimeField("발송 시각", null=True, blank=True)
    # The send lease: one execution of the send step at a time, each with a token of its own
    # (never the task id: SQS hands the same task to two consumers). Every state write of the
    # send step is fenced on it (UPDATE … WHERE lease_token = mine), so an execution that
    # lost the lease changes nothing (messaging/pipeline/delivery.py).
    lease_token = models.CharField("발송 임대 토큰", max_length=64, blank=True)
    lease_until = models.DateTimeField("발송 임대 만료 시각", null=True, blank=True)
    transient_failures = models.PositiveIntegerField("일시적 실패 횟수", default=0)
    # Solapi's 429s, counted apart from the transient budget: waited out until
    # MESSAGING_RATE_LIMIT_MAX_WAIT_SECONDS after the first (messaging/pipeline/policies.py).
    rate_limited = models.PositiveIntegerField("속도 제한(429) 횟수", default=0)
    rate_limited_since = models.DateTimeField("속도 제한 시작 시각", null=True, blank=True)
    # Set while the platform breaker holds this chunk back (bad key, clock, balance), with why:
    # its messages show as paused, not sending (messaging/selectors.py, the admin).
    paused_since = models.DateTimeField("일시 중단 시작 시각", null=True, blank=True)
    pause_class = models.CharField("일시 중단 사유", max_length=32, choices=FailureClass.choices, blank=True)
    last_error = models.CharField("마지막 오류", max_length=300, blank=True)
    created = ClockDateTimeField("생성 시각", auto_now_add=True)
    updated = ClockDateTimeField("변경 시각", auto_now=True, db_index=True)

    class Meta:
        verbose_name = "발송 묶음 (chunk)"
        verbose_name_plural = "발송 묶음 (chunks)"
        ordering = ["send_request_id", "index"]
        constraints = [models.UniqueConstraint(fields=["send_request", "index"], name="chunk_index")]
        # Unfinished chunks are few; pacing and the sweeps look at them all the time.
        indexes = [models.Index(fields=["send_request"], condition=~Q(status="finalized"), name="chunk_unfinished")]

    def __str__(self) -> str:
        return f"chunk {self.send_request_id}/{self.index} ({self.status})"

    @property
    def paused(self) -> bool:
        return self.paused_since is not None and self.status in (ChunkStatus.HELD, ChunkStatus.SENDING)

    def may_have_been_sent(self) -> bool:
        """Whether any send of its group may have reached Solapi: one that succeeded, was
        answered 409, or ended without a clear answer (including a process that died
        mid-call, whose attempt row was written before the call and never completed)."""
        sends = DeliveryAttempt.objects.filter(operation=SolapiOperation.SEND_GROUP).filter(
            Q(ambiguous=True) | Q(http_status__in=[200, 409]))
        # A shared group (messaging/pipeline/express.py) goes out with any of its chunks'
        # sends: a chunk resumed on its own may send the others' messages too.
        mine = Q(chunk=self) | Q(solapi_group_id=self.solapi_group_id) if self.solapi_group_id else Q(chunk=self)
        return sends.filter(mine).exists()


class MessageStatus(models.TextChoices):
    SKIPPED = "skipped", "제외 (skipped)"
    PENDING = "pending", "대기 (pending)"
    HELD = "held", "충전금 예약 (credit held)"
    SENDING = "sending", "발송 중 (sending)"
    ACCEPTED = "accepted", "접수 (accepted by Solapi)"
    DELIVERED = "delivered", "전달 (delivered)"
    FAILED = "failed", "실패 (failed)"


FINAL_STATUSES = frozenset({MessageStatus.SKIPPED, MessageStatus.DELIVERED, MessageStatus.FAILED})
# Not at Solapi yet. The pipeline stores only `pending` for such a message: every write of a
# row is a new row version (WAL, index entries, vacuum), so a message's row is written twice
# on its way out, inserted and then accepted (or failed, skipped). Whether its credit is held
# or it is being sent is its chunk's state (ChunkStatus.HELD, SENDING), shown as the
# message's own by shown_message_status. `held` and `sending` stay readable: rows written
# before issue 17 may still carry them, and the pipeline treats all three alike.
UNSENT_STATUSES = (MessageStatus.PENDING, MessageStatus.HELD, MessageStatus.SENDING)
# A pending message takes the status of its chunk's step.
_STATUS_OF_CHUNK_STEP = {ChunkStatus.HELD: MessageStatus.HELD, ChunkStatus.SENDING: MessageStatus.SENDING}


def shown_status_of(status: str, chunk_status: str | None) -> str:
    """Where a message stands: its own status, or for a pending one its chunk's step."""
    if status == MessageStatus.PENDING and chunk_status in _STATUS_OF_CHUNK_STEP:
        return _STATUS_OF_CHUNK_STEP[chunk_status]
    return status


def shown_message_status() -> Case:
    """shown_status_of in SQL, for Message querysets (annotate, values, filter). The chunk is
    joined by a LEFT OUTER JOIN: a message in no chunk keeps its status."""
    steps = [When(status=MessageStatus.PENDING, chunk__status=chunk_status, then=Value(status.value))
             for chunk_status, status in _STATUS_OF_CHUNK_STEP.items()]
    return Case(*steps, default=F("status"), output_field=models.CharField())


class SkipReason(models.TextChoices):
    NO_PHONE = "no_phone", "전화번호 없음 (no phone number)"
    INVALID_PHONE = "invalid_phone", "전화번호 오류 (invalid phone number)"
    OPTED_OUT = "opted_out", "수신거부 (opted out)"
    BLOCKED = "blocked", "수신 차단 번호 (blocked number)"
    DUPLICATE_PHONE = "duplicate_phone", "중복 번호 (same number, same text)"
    NO_MARKETING_CONSENT = "no_marketing_consent", "광고 수신 미동의 (no marketing consent)"
    # The student's name (#{이름}) has characters SMS/LMS cannot carry (e.g. 똠, emoji).
    UNSUPPORTED_CHARACTERS_IN_NAME = "unsupported_characters_in_name", "이름에 보낼 수 없는 글자 (name not sendable)"


class Message(models.Model):
    # The API writes a send's rows, up to 10,000, in the request (issue 17). PostgreSQL checks
    # each foreign key row by row at commit and inserts each row into every index: the keys below
    # keep only what the code cannot guarantee, and the indexes only what a query needs
    # (docs/capacity.md, "The message table"). tests/api/test_message_integrity.py checks the rest.
    #
    # No constraint: the row's tenant is its send request's (the one builder,
    # messaging/compose/message_rows.py, copies it), and that one is constrained. No index and
    # DO_NOTHING: nothing looks messages up by tenant, and a tenant cannot be deleted while it has
    # messages anyway (their send requests PROTECT it), so a deletion need not scan this table.
    tenant = models.ForeignKey(Tenant, on_delete=models.DO_NOTHING, related_name="+", verbose_name="학원",
                               db_constraint=False, db_index=False)
    # No constraint: rows are only written with the send request created just before them in the
    # same transaction, and send requests are never deleted (retention keeps them, their admin is
    # read-only). No index of its own: the (send_request, status) index serves every lookup.
    send_request = models.ForeignKey(
        SendRequest, on_delete=models.CASCADE, related_name="messages", verbose_name="발송 요청",
        db_constraint=False, db_index=False,
    )
    # No constraint: NULL when the API writes the row; set by the worker (split_into_chunks) to a
    # chunk created in the same transaction, and chunks are never deleted. Indexed by the partial
    # (chunk, status) index below, which rows without a chunk stay out of.
    chunk = models.ForeignKey(
        Chunk, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages", verbose_name="발송 묶음",
        db_constraint=False, db_index=False,
    )
    # No constraint: staff may delete a student in the admin, so a send and a deletion lock the
    # student's row instead, the send checking in one statement what the constraint checked row
    # by row (messaging/student_guard.py). Indexed: the index serves the SET NULL of a deleted
    # student's messages (Django's, before the delete).
    student = models.ForeignKey(
        Student, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name="학생",
        db_constraint=False,
    )
    recipient_kind = models.CharField("수신자 구분", max_length=8, choices=RecipientKind.choices)
    phone = models.CharField("전화번호", max_length=11, blank=True)
    message_type = models.CharField("메시지 유형", max_length=8, choices=MessageType.choices, blank=True)
    # For AlimTalk with fallback: the type Solapi sends if Kakao cannot deliver.
    fallback_type = models.CharField("대체 발송 유형", max_length=8, choices=MessageType.choices, blank=True)
    # The type Solapi reports it delivered (an AlimTalk that fell back arrives as SMS/LMS).
    delivered_type = models.CharField("전달된 유형", max_length=8, choices=MessageType.choices, blank=True)
    text = models.TextField("내용", blank=True)
    subject = models.CharField("제목", max_length=100, blank=True)
    # AlimTalk template variables for this recipient.
    variables = models.JSONField("템플릿 변수", default=dict, blank=True)
    price = models.DecimalField("단가", default=0, **MONEY)
    status = models.CharField("상태", max_length=16, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    skip_reason = models.CharField("제외 사유", max_length=32, choices=SkipReason.choices, blank=True)
    failure_class = models.CharField("실패 분류", max_length=32, choices=FailureClass.choices, blank=True)
    failure_reason = models.CharField("실패 사유", max_length=300, blank=True)
    solapi_status_code = models.CharField("Solapi 상태 코드", max_length=8, blank=True)
    # Indexed in Meta (a plain index: db_index would add a LIKE-prefix one no query uses).
    solapi_message_id = models.CharField("Solapi 메시지 ID", max_length=64, blank=True)
    # A staff-triggered retry of a failed message is a new message (new hold, new group);
    # one-to-one, so the same failure cannot be retried twice. No constraint: NULL when the API
    # writes the row; a resend sets it to the message it read in the same transaction, and
    # messages are never deleted. The unique index stays (it is what refuses a second retry).
    retry_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retry", verbose_name="재시도 원본",
        db_constraint=False,
    )
    # Night-window deferral for ads (Korean sending rules): not sent before this time.
    not_before = models.DateTimeField("발송 가능 시각", null=True, blank=True)
    accepted_at = models.DateTimeField("접수 시각", null=True, blank=True)
    completed_at = models.DateTimeField("완료 시각", null=True, blank=True)
    created = ClockDateTimeField("생성 시각", auto_now_add=True)
    updated = ClockDateTimeField("변경 시각", auto_now=True)

    class Meta:
        verbose_name = "메시지"
        verbose_name_plural = "메시지"
        ordering = ["id"]
        # Admin actions check these when they run (messaging/admin.py).
        permissions = [("retry_messages", "Can retry failed messages (charged to their academy)")]
        # Each serves queries (docs/capacity.md lists which).
        indexes = [
            models.Index(fields=["send_request", "status"]),
            # Partial: the API writes rows without a chunk, and no query looks for "no chunk" by it
            # (those go by send request, or by status).
            models.Index(fields=["chunk", "status"], condition=Q(chunk__isnull=False),
                         name="message_chunk_status"),
            models.Index(fields=["status", "accepted_at"]),
            models.Index(fields=["solapi_message_id"], name="message_solapi_id"),
        ]

    def __str__(self) -> str:
        return f"message {self.id} ({self.status})"

    @property
    def shown_status(self) -> str:
        """Where it stands, as the status API shows it (shown_status_of); reads its chunk."""
        return shown_status_of(self.status, self.chunk.status if self.chunk_id else None)


class SolapiOperation(models.TextChoices):
    CREATE_GROUP = "create_group"
    ADD_MESSAGES = "add_messages"
    SEND_GROUP = "send_group"
    GET_GROUP = "get_group"
    GET_GROUP_MESSAGES = "get_group_messages"


class DeliveryAttempt(models.Model):
    """One call to Solapi on behalf of a chunk: the timeline's raw material."""

    chunk = models.ForeignKey(Chunk, on_delete=models.CASCADE, related_name="attempts", verbose_name="발송 묶음")
    operation = models.CharField("호출", max_length=24, choices=SolapiOperation.choices)
    task_id = models.CharField("작업 ID", max_length=64, blank=True)
    solapi_group_id = models.CharField("Solapi 그룹 ID", max_length=64, blank=True, db_index=True)
    http_status = models.PositiveSmallIntegerField("HTTP 상태", null=True, blank=True)
    error_code = models.CharField("오류 코드", max_length=64, blank=True)
    failure_class = models.CharField("실패 분류", max_length=32, choices=FailureClass.choices, blank=True)
    # The request may have reached Solapi even though we saw an error.
    ambiguous = models.BooleanField("불확실", default=False)
    detail = models.CharField("상세", max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField("소요 시간 (ms)", default=0)
    created = ClockDateTimeField("호출 시각", auto_now_add=True)

    class Meta:
        verbose_name = "Solapi 호출 기록"
        verbose_name_plural = "Solapi 호출 기록"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.operation} {self.http_status or self.error_code or 'ok'}"


class OutcomeEvent(models.TextChoices):
    ACCEPTED = "accepted", "접수 (accepted)"
    DELIVERED = "delivered", "전달 (delivered)"
    FAILED = "failed", "실패 (failed)"


class MessageOutcome(models.Model):
    """One row per outcome a message reaches (accepted, delivered, failed), with the
    credit that outcome moved: the academy's per-message account of what it paid for."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+", verbose_name="학원")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="outcomes", verbose_name="메시지")
    event = models.CharField("결과", max_length=16, choices=OutcomeEvent.choices)
    success = models.BooleanField("성공")
    # Credit charged (positive) or given back (negative) by this outcome.
    amount = models.DecimalField("금액", default=0, **MONEY)
    recipient_summary = models.CharField("수신자 (가림)", max_length=20)
    failure_class = models.CharField("실패 분류", max_length=32, choices=FailureClass.choices, blank=True)
    failure_reason = models.CharField("실패 사유", max_length=300, blank=True)
    created = ClockDateTimeField("기록 시각", auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "메시지 결과"
        verbose_name_plural = "메시지 결과"
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["message", "event"], name="one_row_per_outcome")]

    def __str__(self) -> str:
        return f"{self.recipient_summary} {self.event}"


class DeliveryReport(models.Model):
    """A Solapi single report as received; the unique event id drops re-deliveries."""

    event_data_id = models.CharField("이벤트 ID", max_length=100, unique=True)
    message = models.ForeignKey(
        Message, null=True, on_delete=models.SET_NULL, related_name="reports", verbose_name="메시지"
    )
    solapi_message_id = models.CharField("Solapi 메시지 ID", max_length=64, blank=True)
    status_code = models.CharField("상태 코드", max_length=8)
    message_type = models.CharField("메시지 유형", max_length=8, blank=True)
    payload = models.JSONField("원본 내용")
    received = ClockDateTimeField("수신 시각", auto_now_add=True)

    class Meta:
        verbose_name = "전달 결과 리포트"
        verbose_name_plural = "전달 결과 리포트"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"report {self.event_data_id} ({self.status_code})"


class ReceivedReportBatch(models.Model):
    """One webhook POST's reports as received, stored before the webhook answers and applied
    after it, by a task on the interactive queue (messaging/reports/inbox.py). `applied` is set
    in the transaction that applies them, so a batch is applied exactly once: a crash mid-apply
    leaves it waiting, and the next try applies it whole. Re-deliveries are dropped when applied
    (DeliveryReport's unique event id), not here: Solapi's second copy comes in another POST."""

    # The POST's JSON list, as ASCII JSON text: PostgreSQL keeps no NUL or lone surrogate in
    # text or jsonb, and those reach the adapter, which counts them as invalid reports.
    body = models.TextField("원본 내용")
    # Items in the POST: the backlog in reports (gauge), without reading bodies.
    reports = models.PositiveIntegerField("리포트 수")
    received = ClockDateTimeField("수신 시각", auto_now_add=True)
    # None: waiting to be applied.
    applied = models.DateTimeField("적용 시각", null=True, blank=True)
    # What became of the POST's reports (messaging/reports/apply.py, ReportSummary), once applied.
    summary = models.JSONField("적용 결과", null=True, blank=True)
    # Tries that failed (the batch stays waiting; beat's sweep tries again), and the last error.
    failed_attempts = models.PositiveIntegerField("실패한 시도", default=0)
    last_error = models.CharField("마지막 오류", max_length=300, blank=True)

    class Meta:
        verbose_name = "수신한 리포트 묶음 (received report batch)"
        verbose_name_plural = "수신한 리포트 묶음 (received report batch)"
        indexes = [
            # The waiting batches, oldest first: the apply task's claim, the sweep and the gauge
            # read only these, however many applied ones the table keeps.
            models.Index(fields=["id"], condition=Q(applied__isnull=True), name="report_batch_waiting"),
        ]

    def __str__(self) -> str:
        state = f"applied {clock.shown(self.applied)}" if self.applied else "waiting"
        return f"report batch {self.id} ({self.reports} reports, {state})"


class BooksStatus(models.TextChoices):
    MATCHED = "matched", "일치 (matched)"
    DIFFERS = "differs", "불일치 (Solapi billed a different amount)"
    # An operator looked into a difference and wrote down why (admin action).
    EXPLAINED = "explained", "확인됨 (difference explained)"


class GroupReconciliation(models.Model):
    """Our books against Solapi's for one settled group (chunk): what the academies were
    charged for its messages (net of refunds) against what Solapi billed (its balance and
    point: requested + replacement − refund). A difference is logged as an ERROR
    (group_books_differ) and reported by billing_audit until explained."""

    chunk = models.OneToOneField(
        Chunk, on_delete=models.CASCADE, related_name="reconciliation", verbose_name="발송 묶음"
    )
    solapi_group_id = models.CharField("Solapi 그룹 ID", max_length=64)
    # What the academies were charged for the group's messages, net of refunds.
    expected = models.DecimalField("우리 장부 금액", **MONEY)
    billed = models.DecimalField("Solapi 청구 금액", **MONEY)
    # billed − expected: positive when Solapi billed more than the academies were charged.
    difference = models.DecimalField("차액", **MONEY)
    delivered = models.PositiveIntegerField("전달 건수", default=0)
    # AlimTalks sent as SMS/LMS: by our records, and by Solapi's count.sentReplacement.
    fallbacks = models.PositiveIntegerField("대체 발송 건수", default=0)
    solapi_fallbacks = models.PositiveIntegerField("Solapi 대체 발송 건수", default=0)
    # Solapi's group money columns as read: {"balance": {...}, "point": {...}}.
    solapi_billing = models.JSONField("Solapi 청구 내역", default=dict)
    status = models.CharField("상태", max_length=16, choices=BooksStatus.choices)
    explanation = models.CharField("설명", max_length=300, blank=True)
    checked = ClockDateTimeField("확인 시각", auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "정산 대사 (그룹별)"
        verbose_name_plural = "정산 대사 (그룹별)"
        ordering = ["-id"]
        indexes = [models.Index(fields=["status"])]
        permissions = [("explain_books_difference", "Can explain a difference between our books and Solapi's bill")]

    def __str__(self) -> str:
        return f"books of {self.solapi_group_id}: {self.status} ({self.difference:+})"


class SuppressionReason(models.TextChoices):
    OPTED_OUT = "opted_out", "수신거부 (opted out)"
    INVALID = "invalid", "없는 번호 (invalid number)"
    BLOCKED = "blocked", "차단 (blocked)"


class SuppressedRecipient(models.Model):
    """Numbers this academy must not send to again, learned from Solapi or entered by staff."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="suppressed_recipients", verbose_name="학원"
    )
    phone = models.CharField("전화번호", max_length=11)
    reason = models.CharField("사유", max_length=16, choices=SuppressionReason.choices)
    source = models.CharField("출처", max_length=64, help_text="Solapi status code, or 'staff'.")
    created = ClockDateTimeField("등록 시각", auto_now_add=True)

    class Meta:
        verbose_name = "발송 제외 번호"
        verbose_name_plural = "발송 제외 번호"
        constraints = [models.UniqueConstraint(fields=["tenant", "phone"], name="suppress_once")]

    def __str__(self) -> str:
        return f"{mask_phone(self.phone)} ({self.reason})"


class BreakerState(models.TextChoices):
    CLOSED = "closed", "정상 (closed)"
    OPEN = "open", "중단 (open: sending paused)"


class CircuitBreaker(models.Model):
    """Platform-wide pause of Solapi calls (bad key, clock skew, our balance)."""

    name = models.CharField("이름", max_length=32, unique=True)
    state = models.CharField("상태", max_length=8, choices=BreakerState.choices, default=BreakerState.CLOSED)
    failure_class = models.CharField("실패 분류", max_length=32, choices=FailureClass.choices, blank=True)
    error_code = models.CharField("오류 코드", max_length=64, blank=True)
    detail = models.CharField("상세", max_length=300, blank=True)
    opened_at = models.DateTimeField("차단 시각", null=True, blank=True)
    # While open, one worker at a time may probe Solapi after this moment.
    next_probe_at = models.DateTimeField("다음 확인 시각", null=True, blank=True)
    closed_at = models.DateTimeField("해제 시각", null=True, blank=True)

    class Meta:
        verbose_name = "발송 차단기 (breaker)"
        verbose_name_plural = "발송 차단기 (breaker)"
        permissions = [("close_breaker", "Can close the breaker: resume sending platform-wide")]

    def __str__(self) -> str:
        return f"{self.name}: {self.state}"


class WorkerHeartbeat(models.Model):
    """Proof of life from each worker, written by a bootstep on a timer: on SQS,
    `celery inspect ping` gets no answer (no fanout), so liveness lives here."""

    hostname = models.CharField("호스트명", max_length=200, unique=True)
    pid = models.PositiveIntegerField("프로세스 ID")
    started = models.DateTimeField("시작 시각")
    last_seen = models.DateTimeField("마지막 신호 시각")
    stopped = models.DateTimeField("종료 시각", null=True, blank=True)
    # Its pool's task slots: the pacing's worker capacity (messaging/pipeline/pacing.py).
    concurrency = models.PositiveIntegerField("동시 실행 수", default=1)
    # The queues it consumes: the pacing counts only the slots that take broadcast chunks, and an
    # alert names a queue that no live worker consumes.
    queues = models.CharField("소비하는 큐", max_length=16, choices=WorkerQueues.choices, default=WorkerQueues.ALL)

    class Meta:
        verbose_name = "워커 생존 신호"
        verbose_name_plural = "워커 생존 신호"
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"{self.hostname} (seen {clock.shown(self.last_seen)})"


class RequestRate(models.Model):
    """The account-wide pace of Solapi calls, shared by every worker process
    (messaging/solapi/rate_limit.py): the earliest moment the next call may start."""

    name = models.CharField("이름", max_length=32, unique=True)
    # Seconds since the epoch: one float, so that reserving a slot is one portable UPDATE.
    next_slot = models.FloatField("다음 호출 가능 시각 (epoch 초)", default=0.0)

    class Meta:
        verbose_name = "Solapi 호출 속도"
        verbose_name_plural = "Solapi 호출 속도"

    def __str__(self) -> str:
        return f"{self.name}: next call at {self.next_slot:.3f}"


class QueueProgress(models.Model):
    """How far each queue's consumers have got: the publish time (when it became visible:
    after any SQS delay) of the newest task a worker has started from it. Written by the
    workers (messaging/pipeline/queue_progress.py); the stale-chunk sweep reads it to tell a
    chunk whose step is lost from one whose step still waits in a long queue."""

    queue = models.CharField("큐 (queue)", max_length=80, unique=True)
    head_published_at = models.DateTimeField("시작된 마지막 작업의 발행 시각")
    updated = models.DateTimeField("기록 시각")

    class Meta:
        verbose_name = "큐 진행 상황 (queue progress)"
        verbose_name_plural = "큐 진행 상황 (queue progress)"

    def __str__(self) -> str:
        return f"{self.queue}: started up to {clock.shown(self.head_published_at)}"


class PendingDispatch(models.Model):
    """Per coalesced task (the interactive queue's dispatch, keyed by the queue; the report
    apply, by the queue and "#reports"): until when a task published for it is due to start.
    A send (or a webhook POST) finding one due publishes nothing of its own: that task takes
    every small request (every report batch) waiting. The task clears the mark as it starts; a
    mark a lost task leaves behind expires (messaging/pipeline/due_marks.py)."""

    queue = models.CharField("큐 (queue)", max_length=80, unique=True)
    # None: no dispatch is due; the next send publishes one.
    pending_until = models.DateTimeField("발행된 dispatch 유효 시각", null=True, blank=True)

    class Meta:
        verbose_name = "대기 중인 dispatch (pending dispatch)"
        verbose_name_plural = "대기 중인 dispatch (pending dispatch)"

    def __str__(self) -> str:
        due = clock.shown(self.pending_until) if self.pending_until else "none"
        return f"{self.queue}: dispatch due until {due}"


class HealthSnapshot(models.Model):
    """The latest health snapshot of the process that runs the checks (the `edge`:
    project/health/monitor.py), so the `web` processes answer /healthz from it without
    polling SQS themselves. One row."""

    report = models.JSONField("보고", encoder=DjangoJSONEncoder)
    checked_at = models.DateTimeField("확인 시각")

    class Meta:
        verbose_name = "상태 점검 (health snapshot)"
        verbose_name_plural = "상태 점검 (health snapshot)"

    def __str__(self) -> str:
        return f"{self.report.get('status')} at {clock.shown(self.checked_at)}"


class AlertState(models.Model):
    """One row per alert condition (messaging/operations/alerts.py): whether it is active and
    since when, so that beat's check raises an alert once at its onset, not every tick."""

    name = models.CharField("경보", max_length=40, unique=True)
    active = models.BooleanField("발생 중", default=False)
    since = models.DateTimeField("발생 시각", null=True, blank=True)
    # When it was last raised (the onset, then each ALERT_REPEAT_SECONDS while it lasts).
    raised_at = models.DateTimeField("마지막 알림 시각", null=True, blank=True)
    detail = models.CharField("내용", max_length=300, blank=True)
    resolved_at = models.DateTimeField("해소 시각", null=True, blank=True)
    # Every check writes it: a stale value means beat (or the worker) is not running the check.
    checked_at = models.DateTimeField("마지막 확인 시각", null=True, blank=True)

    class Meta:
        verbose_name = "운영 경보"
        verbose_name_plural = "운영 경보"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}: {'active' if self.active else 'clear'}"
