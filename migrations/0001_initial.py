from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from portal.ledger.models import Actor, Channel, EventKind, Method
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='ApiClient',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=100)),
                ('token_lookup', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'api_client', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Patron',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('card_lookup', fields.CharField(unique=True, max_length=64)),
                ('pin_hash', fields.CharField(null=True, max_length=200)),
                ('locale', fields.CharField(null=True, max_length=10)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'patron', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='HistoryEntry',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('patron', fields.ForeignKeyField('models.Patron', source_field='patron_id', db_index=True, db_constraint=True, to_field='id', related_name='history', on_delete=OnDelete.RESTRICT)),
                ('title', fields.CharField(max_length=500)),
                ('author', fields.CharField(default='', max_length=300)),
                ('borrowed_on', fields.DateField()),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'history_entry', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Store `reading_history`: what the library system reported the patron borrowed.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PinSetupCode',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('patron', fields.ForeignKeyField('models.Patron', source_field='patron_id', db_index=True, db_constraint=True, to_field='id', related_name='setup_codes', on_delete=OnDelete.CASCADE)),
                ('code_lookup', fields.CharField(unique=True, max_length=64)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'pin_setup_code', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A one-time code a new cardholder uses to set their own PIN, deleted once used.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PortalSession',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('token_lookup', fields.CharField(unique=True, max_length=64)),
                ('patron', fields.ForeignKeyField('models.Patron', source_field='patron_id', db_index=True, db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'portal_session', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A signed-in visit. Purpose: keep the patron signed in, deleted at sign-out or expiry.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Publication',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('library_name', fields.CharField(max_length=200)),
                ('source_hash', fields.CharField(max_length=64)),
                ('published_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('changed_services', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'publication', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One row per successful publish of the catalog.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SavedList',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('patron', fields.ForeignKeyField('models.Patron', source_field='patron_id', db_index=True, db_constraint=True, to_field='id', related_name='saved_lists', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'saved_list', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Store `saved_lists`: lists the patron makes of titles to remember.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SavedListItem',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('saved_list', fields.ForeignKeyField('models.SavedList', source_field='saved_list_id', db_index=True, db_constraint=True, to_field='id', related_name='items', on_delete=OnDelete.CASCADE)),
                ('title', fields.CharField(max_length=500)),
                ('added_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'saved_list_item', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Service',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=40)),
                ('store', fields.CharField(null=True, max_length=40)),
                ('revision', fields.IntField()),
                ('terms_revision', fields.IntField()),
                ('terms', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('position', fields.IntField()),
                ('published_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'service', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='NoticeVersion',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('service', fields.ForeignKeyField('models.Service', source_field='service_id', db_index=True, db_constraint=True, to_field='id', related_name='notice_versions', on_delete=OnDelete.RESTRICT)),
                ('locale', fields.CharField(max_length=10)),
                ('revision', fields.IntField()),
                ('terms_revision', fields.IntField()),
                ('terms', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('texts', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('content_hash', fields.CharField(max_length=64)),
                ('published_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notice_version', 'app': 'models', 'unique_together': (('service', 'locale', 'revision'),), 'pk_attr': 'id', 'table_description': 'Never updated or deleted: a consent points at the exact text the patron saw.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ConsentEvent',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('patron', fields.ForeignKeyField('models.Patron', source_field='patron_id', db_index=True, db_constraint=True, to_field='id', related_name='consent_events', on_delete=OnDelete.RESTRICT)),
                ('service', fields.ForeignKeyField('models.Service', source_field='service_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharEnumField(description='GIVEN: given\nREFUSED: refused\nWITHDRAWN: withdrawn\nRENEWED: renewed\nEXPIRED: expired\nERASED: erased\nSUSPENDED: suspended', enum_type=EventKind, max_length=20)),
                ('notice_version', fields.ForeignKeyField('models.NoticeVersion', source_field='notice_version_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('notice_hash', fields.CharField(null=True, max_length=64)),
                ('locale', fields.CharField(null=True, max_length=10)),
                ('purposes', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('method', fields.CharEnumField(description='ONLINE: online\nDESK_HANDOVER: desk_handover\nGUARDIAN: guardian\nSYSTEM: system', enum_type=Method, max_length=20)),
                ('actor', fields.CharEnumField(description='PATRON: patron\nGUARDIAN: guardian\nSYSTEM: system', enum_type=Actor, max_length=20)),
                ('channel', fields.CharEnumField(description='WEB: web\nAPI: api\nCLI: cli', enum_type=Channel, max_length=10)),
                ('detail', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'consent_event', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ConsentState',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('patron', fields.ForeignKeyField('models.Patron', source_field='patron_id', db_index=True, db_constraint=True, to_field='id', related_name='consents', on_delete=OnDelete.RESTRICT)),
                ('service', fields.ForeignKeyField('models.Service', source_field='service_id', db_constraint=True, to_field='id', related_name='consents', on_delete=OnDelete.RESTRICT)),
                ('granted', fields.BooleanField()),
                ('last_kind', fields.CharEnumField(description='GIVEN: given\nREFUSED: refused\nWITHDRAWN: withdrawn\nRENEWED: renewed\nEXPIRED: expired\nERASED: erased\nSUSPENDED: suspended', enum_type=EventKind, max_length=20)),
                ('notice_version', fields.ForeignKeyField('models.NoticeVersion', source_field='notice_version_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('terms_revision', fields.IntField()),
                ('suspended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revision', fields.IntField()),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consent_state', 'app': 'models', 'unique_together': (('patron', 'service'),), 'pk_attr': 'id', 'table_description': 'Absent row = never decided = off. `revision` lets a form prove it saw the latest state.'},
            bases=['Model'],
        ),
    ]
