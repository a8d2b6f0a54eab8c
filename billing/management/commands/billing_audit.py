from django.core.management.base import BaseCommand, CommandError

from billing.audit import audit
from billing.models import CreditAccount


class Command(BaseCommand):
    help = ("Check that every account's balance and held amount match its ledger, and every registered "
            "check (e.g. groups whose books differ from Solapi's bill). Exits 1 on any problem.")

    def handle(self, *args, **options):
        problems = audit()
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"billing audit: {len(problems)} problem(s)")
        self.stdout.write(f"billing audit: {CreditAccount.objects.count()} account(s), ledger consistent, "
                          "registered checks clean")
