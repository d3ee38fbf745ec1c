"""The library's name in each language ([library.name_in] in the catalog), kept with each
publication. Publications before this have none: every page shows the one name, as before."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("models", "0009_oauth_clients")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Publication",
            name="library_names",
            field=fields.JSONField(null=True),
        ),
    ]
