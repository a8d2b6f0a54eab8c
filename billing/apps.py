from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "충전금과 단가 (credit and pricing)"
