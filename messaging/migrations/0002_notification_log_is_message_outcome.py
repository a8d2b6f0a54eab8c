# NotificationLog said nothing of what it logs: each row is one outcome a message
# reached, with the credit it moved. Rows and table are kept; only names change.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('messaging', '0001_initial'),
        ('tenants', '0001_initial'),
    ]

    operations = [
        migrations.RenameModel(old_name='NotificationLog', new_name='MessageOutcome'),
        migrations.AlterField(
            model_name='messageoutcome',
            name='message',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='outcomes',
                                    to='messaging.message'),
        ),
        migrations.RemoveConstraint(model_name='messageoutcome', name='one_log_per_outcome'),
        migrations.AddConstraint(
            model_name='messageoutcome',
            constraint=models.UniqueConstraint(fields=('message', 'event'), name='one_row_per_outcome'),
        ),
    ]
