"""The outbox's index of due requests ends with the id, the order a worker takes them in: a
claim then reads its batch off the index and stops, where it sorted every pending request
before (a consortium's nightly run leaves 100,000). The table is small outside such a night:
building the index holds its writes for moments."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0025_wrap_retained_keys')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='OutboxMessage',
            name=None,
            fields=['state', 'due_ms'],
        ),
        ops.AddIndex(
            model_name='OutboxMessage',
            index=Index(fields=['state', 'due_ms', 'id']),
        ),
    ]
