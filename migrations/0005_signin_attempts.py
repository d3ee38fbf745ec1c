from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_ledger_append_only')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SignInAttempt',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key_lookup', fields.CharField(db_index=True, max_length=64)),
                ('attempted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'signin_attempt', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One sign-in or PIN-setup attempt against a throttle key (a keyed hash of the card, or'},
            bases=['Model'],
        ),
    ]
