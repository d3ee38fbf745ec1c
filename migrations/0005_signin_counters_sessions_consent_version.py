from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_ledger_append_only')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SignInCounter',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key_lookup', fields.CharField(unique=True, max_length=64)),
                ('window_started_ms', fields.BigIntField(db_index=True)),
                ('attempts', fields.IntField()),
            ],
            options={'table': 'signin_counter', 'app': 'models', 'pk_attr': 'id', 'table_description': "Guesses counted against one throttle key (a keyed hash of a card, or of a client's"},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Patron',
            name='consent_version',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='PortalSession',
            name='ends_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
