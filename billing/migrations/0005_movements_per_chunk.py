# Chunk movements: one ledger entry for a chunk's messages (message_count), and when a
# hold was refunded (the message's credit timeline reads it from its Hold).

from django.db import migrations, models


def count_one_message_per_earlier_entry(apps, schema_editor):
    # Before this migration every hold, capture, release and refund entry moved one message.
    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    LedgerEntry.objects.filter(message_id__isnull=False).update(message_count=1)


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0004_korean_verbose_names'),
    ]

    operations = [
        migrations.AddField(
            model_name='hold',
            name='refunded_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='환불 시각'),
        ),
        migrations.AddField(
            model_name='ledgerentry',
            name='message_count',
            field=models.PositiveIntegerField(default=0, verbose_name='메시지 수'),
        ),
        migrations.RunPython(count_one_message_per_earlier_entry, migrations.RunPython.noop),
    ]
