"""OAuth 2 clients replace the static bearer tokens of `portal api-client NAME`.

The static tokens are retired here: their keyed hashes (`token_lookup`) are dropped, so no
static token works after this migration. Each existing client row stays, with its name and
creation time, so what it did remains attributable; it has no client id, no secret and no
scopes until an operator runs `portal api-client rotate NAME --scope ...` (README, Integration
API). Loans handed over from now on record the client that sent them."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0008_outbox')]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name='ApiClient',
            options={'table': 'api_client', 'app': 'models', 'pk_attr': 'id', 'table_description': "A library system's OAuth client; never deleted, as loans name the client."},
        ),
        ops.AddField(
            model_name='ApiClient',
            name='client_id',
            field=fields.CharField(null=True, unique=True, max_length=32),
        ),
        ops.AddField(
            model_name='ApiClient',
            name='last_token_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='ApiClient',
            name='revoked_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='ApiClient',
            name='rotated_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='ApiClient',
            name='scopes',
            field=fields.CharField(default='', db_default='', max_length=200),
        ),
        ops.AddField(
            model_name='ApiClient',
            name='secret_generation',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='ApiClient',
            name='secret_lookup',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.RemoveField(model_name='ApiClient', name='token_lookup'),
        ops.AddField(
            model_name='HistoryEntry',
            name='recorded_by_client',
            field=fields.IntField(null=True),
        ),
    ]
