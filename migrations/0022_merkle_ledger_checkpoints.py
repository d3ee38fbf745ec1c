"""The consent ledger as a Merkle tree (portal/ledger/merkle.py): its signed checkpoints, the
leaf hashes each checkpoint took and the hashes of whole blocks of leaves. All are written by
`portal checkpoint`, never when an event is written: recording an event stays one insert."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0021_message_contacts')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LedgerBlock',
            fields=[
                ('index', fields.IntField(generated=False, primary_key=True, unique=True, db_index=True)),
                ('block_hash', fields.CharField(max_length=64)),
            ],
            options={'table': 'ledger_block', 'app': 'models', 'pk_attr': 'index', 'table_description': 'MTH of one whole block of merkle.BLOCK leaves, written at checkpoint time, so that a'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LedgerCheckpoint',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tree_size', fields.IntField(unique=True)),
                ('last_event_id', fields.IntField()),
                ('root_hash', fields.CharField(max_length=64)),
                ('made_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('signature', fields.TextField(unique=False)),
                ('previous_size', fields.IntField(null=True)),
                ('consistency', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'ledger_checkpoint', 'app': 'models', 'pk_attr': 'id', 'table_description': "A signed tree head of the ledger (RFC 9162 §4.10's spirit): its size, root and time,"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LedgerLeaf',
            fields=[
                ('position', fields.IntField(generated=False, primary_key=True, unique=True, db_index=True)),
                ('event_id', fields.IntField(unique=True)),
                ('leaf_hash', fields.CharField(max_length=64)),
            ],
            options={'table': 'ledger_leaf', 'app': 'models', 'pk_attr': 'position', 'table_description': "One event's leaf hash as a checkpoint took it (portal.ledger.merkle), at its place in"},
            bases=['Model'],
        ),
    ]
