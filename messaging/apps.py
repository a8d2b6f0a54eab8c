from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "메시징 (messaging)"

    def ready(self) -> None:
        # billing may not import messaging; messaging hands billing_audit its books check instead.
        from billing.audit import register_check
        from messaging import student_guard
        from messaging.pipeline import queue_progress, task_labels
        from messaging.reports.books import unreconciled_groups

        register_check("unreconciled groups", unreconciled_groups)
        # Flower and the task results name each pipeline task's send request and academy.
        task_labels.connect()
        # Every process publishes tasks and workers start them: the stale-chunk sweep reads
        # how far each queue has got (messaging/pipeline/queue_progress.py).
        queue_progress.connect()
        # A message's student exists without a database constraint (messaging/student_guard.py).
        student_guard.connect()
