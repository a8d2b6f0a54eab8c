from django.core.management.base import BaseCommand, CommandError

from billing.audit import audit_accounts
from billing.models import CreditAccount


class Command(BaseCommand):
    help = "Check that every account's balance and held amount match its ledger. Exits 1 on drift."

    def handle(self, *args, **options):
        problems = audit_accounts()
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"billing audit: {len(problems)} problem(s)")
        self.stdout.write(f"billing audit: {CreditAccount.objects.count()} account(s), ledger consistent")
