from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from portal.ledger.models import EventKind
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='GuardianLink',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('guardian', fields.ForeignKeyField('models.Patron', source_field='guardian_id', db_index=True, db_constraint=True, to_field='id', related_name='children_links', on_delete=OnDelete.RESTRICT)),
                ('child', fields.ForeignKeyField('models.Patron', source_field='child_id', db_index=True, db_constraint=True, to_field='id', related_name='guardian_links', on_delete=OnDelete.RESTRICT)),
                ('label', fields.CharField(max_length=60)),
                ('method', fields.CharField(max_length=20)),
                ('linked_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('end_reason', fields.CharField(null=True, max_length=30)),
            ],
            options={'table': 'guardian_link', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LinkCode',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('child', fields.ForeignKeyField('models.Patron', source_field='child_id', db_index=True, db_constraint=True, to_field='id', related_name='link_codes', on_delete=OnDelete.CASCADE)),
                ('code_lookup', fields.CharField(unique=True, max_length=64)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'link_code', 'app': 'models', 'pk_attr': 'id', 'table_description': "A one-time code issued to a child's account for a guardian to redeem, deleted on use."},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='ConsentEvent',
            name='kind',
            field=fields.CharEnumField(description='GIVEN: given\nREFUSED: refused\nWITHDRAWN: withdrawn\nRENEWED: renewed\nEXPIRED: expired\nERASED: erased\nSUSPENDED: suspended\nGUARDIAN_LINKED: guardian_linked\nGUARDIAN_LINK_ENDED: guardian_link_ended', enum_type=EventKind, max_length=20),
        ),
        ops.AlterField(
            model_name='ConsentEvent',
            name='service',
            field=fields.ForeignKeyField('models.Service', source_field='service_id', null=True, db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='ConsentEvent',
            name='acting_guardian',
            field=fields.ForeignKeyField('models.Patron', source_field='acting_guardian_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT),
        ),
        ops.AlterField(
            model_name='ConsentState',
            name='last_kind',
            field=fields.CharEnumField(description='GIVEN: given\nREFUSED: refused\nWITHDRAWN: withdrawn\nRENEWED: renewed\nEXPIRED: expired\nERASED: erased\nSUSPENDED: suspended\nGUARDIAN_LINKED: guardian_linked\nGUARDIAN_LINK_ENDED: guardian_link_ended', enum_type=EventKind, max_length=20),
        ),
        ops.AddField(
            model_name='ConsentState',
            name='granted_by',
            field=fields.CharField(null=True, max_length=20),
        ),
        ops.AddField(
            model_name='ConsentState',
            name='suspension_reason',
            field=fields.CharField(null=True, max_length=30),
        ),
        ops.AddField(
            model_name='Patron',
            name='born_on',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='Patron',
            name='came_of_age_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Patron',
            name='jurisdiction',
            field=fields.CharField(null=True, max_length=20),
        ),
        ops.AddField(
            model_name='Patron',
            name='shares_with_guardians',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Publication',
            name='jurisdiction',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Service',
            name='minimum_age',
            field=fields.IntField(null=True),
        ),
    ]
