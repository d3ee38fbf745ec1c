"""Each patron's reference as connected systems know them, kept with the account: for
accounts made from now on, HMAC-SHA256 of the normalised card under the patron reference key
(derived from PORTAL_SECRET_KEY, printed by `portal reference-key`, and good for nothing
else). Accounts made before have none: their reference stays the card's keyed hash, as
connected systems already hold it (the portal keeps no card number to compute a new one)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("models", "0016_report_release")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Patron",
            name="reference",
            field=fields.CharField(max_length=64, null=True, unique=True),
        ),
    ]
