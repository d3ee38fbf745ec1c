from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from portal.ledger.vocabulary import Channel
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_signin_counters_sessions_consent_version')]

    initial = False

    operations = [
        ops.CreateModel(
            name='StaffMember',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subject_lookup', fields.CharField(unique=True, max_length=64)),
                ('username', fields.CharField(null=True, unique=True, max_length=60)),
                ('display_name', fields.CharField(max_length=100)),
                ('pseudonym', fields.CharField(unique=True, max_length=20)),
                ('roles', fields.CharField(max_length=60)),
                ('source', fields.CharField(max_length=10)),
                ('password_hash', fields.CharField(null=True, max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'staff_member', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Handover',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('token_lookup', fields.CharField(unique=True, max_length=64)),
                ('staff', fields.ForeignKeyField('models.StaffMember', source_field='staff_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('patron', fields.ForeignKeyField('models.Patron', source_field='patron_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('guardian', fields.ForeignKeyField('models.Patron', source_field='guardian_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('purpose', fields.CharField(max_length=20)),
                ('pin_set', fields.BooleanField(default=False)),
                ('guardian_needs_pin', fields.BooleanField(default=False)),
                ('guardian_decides', fields.BooleanField(default=False)),
                ('service_keys', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('position', fields.IntField(default=0)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'desk_handover', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StaffAuditEvent',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('staff', fields.ForeignKeyField('models.StaffMember', source_field='staff_id', db_index=True, db_constraint=True, to_field='id', related_name='actions', on_delete=OnDelete.RESTRICT)),
                ('staff_name', fields.CharField(max_length=100)),
                ('action', fields.CharField(db_index=True, max_length=30)),
                ('patron_key', fields.CharField(null=True, db_index=True, max_length=64)),
                ('reason', fields.CharField(null=True, max_length=200)),
                ('detail', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('occurred_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'staff_audit_event', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One staff action. Append-only in the database (migration 0007), like the ledger.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StaffSession',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('token_lookup', fields.CharField(unique=True, max_length=64)),
                ('staff', fields.ForeignKeyField('models.StaffMember', source_field='staff_id', db_index=True, db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('roles', fields.CharField(max_length=60)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'staff_session', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A staff member signed in at a desk: its own cookie, a short idle timeout and an'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StaffSetupCode',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('staff', fields.ForeignKeyField('models.StaffMember', source_field='staff_id', db_index=True, db_constraint=True, to_field='id', related_name='setup_codes', on_delete=OnDelete.CASCADE)),
                ('code_lookup', fields.CharField(unique=True, max_length=64)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'staff_setup_code', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A one-time code with which a local staff member sets their own password.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StaffSignInState',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('token_lookup', fields.CharField(unique=True, max_length=64)),
                ('data', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'staff_signin_state', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An identity-provider sign-in under way: state, nonce and PKCE verifier, server-side'},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='ConsentEvent',
            name='channel',
            field=fields.CharEnumField(description='WEB: web\nCLI: cli\nDESK: desk', enum_type=Channel, max_length=10),
        ),
        ops.AddField(
            model_name='ConsentEvent',
            name='witnessed_by',
            field=fields.CharField(null=True, max_length=20),
        ),
    ]
