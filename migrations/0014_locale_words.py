"""The library's name in each language ([library.name_in] in the catalog), kept with each
publication. Publications before this have none: every page shows the one name, as before.

Tagalog/Filipino is `fil` everywhere now (it was `tl`). A patron's chosen language is a
preference and moves to the new code. Ledger entries and published notice versions keep
the `tl` they were written with (the ledger is append-only; a notice version's content hash
includes its code): the portal reads `tl` there as `fil` (portal/locale_codes.py)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


async def patrons_choose_fil(apps, editor):
    await editor.client.execute_script("UPDATE patron SET locale = 'fil' WHERE locale = 'tl'")


async def patrons_choose_tl(apps, editor):
    await editor.client.execute_script("UPDATE patron SET locale = 'tl' WHERE locale = 'fil'")


class Migration(migrations.Migration):
    dependencies = [("models", "0013_officer")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Publication",
            name="library_names",
            field=fields.JSONField(null=True),
        ),
        ops.RunPython(patrons_choose_fil, patrons_choose_tl),
    ]
