"""The privacy officer's tables: the history of the scheduled jobs (each run written when it
starts and completed when it ends) and the register of requests from outside bodies."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from portal.officer.policy import RunOutcome
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0012_child_notices')]

    initial = False

    operations = [
        ops.CreateModel(
            name='JobRun',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('job', fields.CharField(max_length=30)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('alive_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outcome', fields.CharEnumField(description='RUNNING: running\nSUCCEEDED: succeeded\nFAILED: failed', enum_type=RunOutcome, max_length=10)),
                ('counts', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('failure', fields.CharField(null=True, max_length=200)),
            ],
            options={'table': 'job_run', 'app': 'models', 'indexes': [Index(fields=['job', 'started_at'])], 'pk_attr': 'id', 'table_description': 'One run of a scheduled job, written when it starts (in its own transaction) and'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutsideRequest',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('received_on', fields.DateField()),
                ('requesting_body', fields.CharField(max_length=30)),
                ('body_name', fields.CharField(max_length=200)),
                ('instrument', fields.CharField(max_length=30)),
                ('reference', fields.CharField(max_length=200)),
                ('asked', fields.TextField(unique=False)),
                ('decision', fields.CharField(max_length=30)),
                ('disclosed', fields.TextField(unique=False)),
                ('patron_key', fields.CharField(null=True, max_length=64)),
                ('handled_by', fields.ForeignKeyField('models.StaffMember', source_field='handled_by_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('handled_by_name', fields.CharField(max_length=100)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'outside_request', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A request for patron information from outside the library, as the privacy officer'},
            bases=['Model'],
        ),
    ]
