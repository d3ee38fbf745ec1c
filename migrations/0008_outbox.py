"""Connected systems and the outbox of requests to them; the ledger's new event kinds for
deletions requested from and confirmed by each system, through the channel `api`.

On SQLite, altering consent_event may rebuild the table and drop its append-only triggers
(migration 0004): they are created again here when missing, as migration 0007 does."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from portal.ledger.vocabulary import Channel, EventKind
from portal.outbox.policy import DeliveryState, MessageKind
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

SQLITE_TRIGGERS = [
    "CREATE TRIGGER IF NOT EXISTS consent_event_no_update BEFORE UPDATE ON consent_event "
    "BEGIN SELECT RAISE(ABORT, 'consent events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS consent_event_no_delete BEFORE DELETE ON consent_event "
    "BEGIN SELECT RAISE(ABORT, 'consent events are append-only'); END",
]


async def keep_ledger_append_only(apps, editor):
    if editor.client.capabilities.dialect == "sqlite":
        for statement in SQLITE_TRIGGERS:
            await editor.client.execute_script(statement)


async def nothing(apps, editor):
    """Going back, the triggers stay: they belong to migration 0004."""


class Migration(migrations.Migration):
    dependencies = [('models', '0007_staff_audit_append_only')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ConnectedSystem',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=40)),
                ('name', fields.CharField(max_length=100)),
                ('endpoint', fields.CharField(max_length=500)),
                ('position', fields.IntField()),
            ],
            options={'table': 'connected_system', 'app': 'models', 'pk_attr': 'id', 'table_description': "A system outside the portal that holds services' data and is sent their deletion"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutboxMessage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('message_id', fields.CharField(unique=True, max_length=40)),
                ('system', fields.CharField(max_length=40)),
                ('kind', fields.CharEnumField(description='DELETION_REQUESTED: deletion.requested\nCONSENT_GIVEN: consent.given', enum_type=MessageKind, max_length=30)),
                ('patron', fields.ForeignKeyField('models.Patron', source_field='patron_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('service', fields.ForeignKeyField('models.Service', source_field='service_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('body', fields.TextField(unique=False)),
                ('once_key', fields.CharField(null=True, unique=True, max_length=120)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('give_up_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('state', fields.CharEnumField(description='PENDING: pending\nACCEPTED: accepted\nCONFIRMED: confirmed\nGAVE_UP: gave_up', enum_type=DeliveryState, max_length=10)),
                ('attempts', fields.IntField(default=0)),
                ('due_ms', fields.BigIntField()),
                ('lease_until_ms', fields.BigIntField(default=0)),
                ('claim', fields.CharField(null=True, max_length=32)),
                ('last_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_status', fields.IntField(null=True)),
                ('last_error', fields.CharField(null=True, max_length=100)),
                ('accepted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('confirmed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('confirmed_via', fields.CharField(null=True, max_length=10)),
            ],
            options={'table': 'outbox_message', 'app': 'models', 'indexes': [Index(fields=['state', 'due_ms']), Index(fields=['system', 'patron_id']), Index(fields=['patron_id', 'service_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='ConsentEvent',
            name='channel',
            field=fields.CharEnumField(description='WEB: web\nCLI: cli\nDESK: desk\nAPI: api', enum_type=Channel, max_length=10),
        ),
        ops.AlterField(
            model_name='ConsentEvent',
            name='kind',
            field=fields.CharEnumField(description='GIVEN: given\nREFUSED: refused\nWITHDRAWN: withdrawn\nRENEWED: renewed\nEXPIRED: expired\nERASED: erased\nSUSPENDED: suspended\nGUARDIAN_LINKED: guardian_linked\nGUARDIAN_LINK_ENDED: guardian_link_ended\nDELETION_REQUESTED: deletion_requested\nDELETION_CONFIRMED: deletion_confirmed', enum_type=EventKind, max_length=20),
        ),
        ops.AlterField(
            model_name='ConsentState',
            name='last_kind',
            field=fields.CharEnumField(description='GIVEN: given\nREFUSED: refused\nWITHDRAWN: withdrawn\nRENEWED: renewed\nEXPIRED: expired\nERASED: erased\nSUSPENDED: suspended\nGUARDIAN_LINKED: guardian_linked\nGUARDIAN_LINK_ENDED: guardian_link_ended\nDELETION_REQUESTED: deletion_requested\nDELETION_CONFIRMED: deletion_confirmed', enum_type=EventKind, max_length=20),
        ),
        ops.AddField(
            model_name='Service',
            name='systems',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.RunPython(keep_ledger_append_only, nothing),
    ]
