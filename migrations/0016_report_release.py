"""The consent report's figures as released each month (differential privacy): drawn once a
month and kept, so that asking again releases nothing new (portal/officer/policy.py)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("models", "0015_outside_request_entry_key")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ReportRelease",
            fields=[
                ("id", fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("period", fields.CharField(max_length=7)),
                ("service", fields.CharField(max_length=40)),
                ("on", fields.IntField()),
                ("off", fields.IntField()),
                ("never", fields.IntField()),
                ("paused", fields.IntField()),
                ("epsilon", fields.CharField(max_length=20)),
                ("margin", fields.IntField()),
                ("taken_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "report_release",
                "app": "models",
                "unique_together": (("period", "service"),),
                "pk_attr": "id",
                "table_description": "One service's row of the consent report for one month, as released: true counts plus",
            },
            bases=["Model"],
        ),
    ]
