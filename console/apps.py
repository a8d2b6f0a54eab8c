from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The staff console (/app/): the pages academy staff write, send and watch messages with."""

    name = "console"
    verbose_name = "직원 콘솔 (staff console)"
