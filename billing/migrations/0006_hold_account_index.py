# The Hold.account index only: its (account, status) index serves every lookup by account.
# Django's AlterField would also drop and re-add the foreign key (re-checking every hold under
# a lock) for a change of db_index: the database step is the DROP INDEX alone.

import django.db.models.deletion
from django.db import migrations, models

INDEX = "billing_hold_account_id_56c002f9"


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0005_movements_per_chunk'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='hold',
                    name='account',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='holds', to='billing.creditaccount', verbose_name='충전금 계정'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX "{INDEX}" ON "billing_hold" ("account_id")',
                ),
            ],
        ),
    ]
