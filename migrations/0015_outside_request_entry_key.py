"""The form of the register of outside requests carries a random key, kept with the request
it records, so that the same form sent twice records one request (portal/officer/forms.py).
Requests recorded before have none."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("models", "0014_locale_words")]

    initial = False

    operations = [
        ops.AddField(
            model_name="OutsideRequest",
            name="entry_key",
            field=fields.CharField(max_length=64, null=True, unique=True),
        ),
    ]
