"""Each API client may speak for one connected system. Clients holding a deletions scope see
and confirm only their own system's deletion requests; an existing one gets its system with
`portal api-client rotate NAME --system KEY` (README, Integration API), and until then its
deletions calls are refused with `system_required`."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0010_sqlite_lost_indexes')]

    initial = False

    operations = [
        ops.AddField(
            model_name='ApiClient',
            name='system',
            field=fields.CharField(null=True, max_length=40),
        ),
    ]
