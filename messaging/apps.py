from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        # billing may not import messaging; messaging hands billing_audit its books check instead.
        from billing.audit import register_check
        from messaging.reports.books import unreconciled_groups

        register_check("unreconciled groups", unreconciled_groups)
