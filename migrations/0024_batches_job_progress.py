"""A scheduled job's progress in its run record: rows done, batches, when the latest batch
ended and the total when it was known (portal.batches, shown on the promises-kept page)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0023_shred_sealed_retained_data')]

    initial = False

    operations = [
        ops.AddField(
            model_name='JobRun',
            name='done',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='JobRun',
            name='batches',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='JobRun',
            name='progress_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='JobRun',
            name='total',
            field=fields.IntField(null=True),
        ),
    ]
