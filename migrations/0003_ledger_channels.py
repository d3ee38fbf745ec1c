from tortoise import migrations
from tortoise.migrations import operations as ops
from portal.ledger.models import Channel
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_minors_and_guardians')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='ConsentEvent',
            name='channel',
            field=fields.CharEnumField(description='WEB: web\nCLI: cli', enum_type=Channel, max_length=10),
        ),
    ]
