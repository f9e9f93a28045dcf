from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_sessions_reports_ledger')]

    initial = False

    operations = [
        ops.CreateModel(
            name='IdempotencyKey',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='idempotency_keys', on_delete=OnDelete.CASCADE)),
                ('key', fields.CharField(max_length=100)),
                ('fingerprint', fields.CharField(max_length=64)),
                ('trade', fields.ForeignKeyField('models.Trade', source_field='trade_id', db_constraint=True, to_field='id', related_name='idempotency_keys', on_delete=OnDelete.CASCADE)),
                ('balance_after_cents', fields.BigIntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'idempotency_keys', 'app': 'models', 'unique_together': (('user', 'key'),), 'pk_attr': 'id', 'table_description': "A trade request's key (per user, kept 24 hours) and what it produced."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Position',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='positions', on_delete=OnDelete.RESTRICT)),
                ('market', fields.ForeignKeyField('models.Market', source_field='market_id', db_constraint=True, to_field='id', related_name='positions', on_delete=OnDelete.RESTRICT)),
                ('outcome', fields.ForeignKeyField('models.Outcome', source_field='outcome_id', db_constraint=True, to_field='id', related_name='positions', on_delete=OnDelete.RESTRICT)),
                ('shares_units', fields.BigIntField(default=0)),
                ('cost_basis_cents', fields.BigIntField(default=0)),
                ('realized_cents', fields.BigIntField(default=0)),
                ('settled_value_cents', fields.BigIntField(null=True)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'positions', 'app': 'models', 'unique_together': (('user', 'outcome'),), 'indexes': [Index(fields=['market_id', 'user_id'])], 'pk_attr': 'id', 'table_description': "A user's holding of one outcome: shares, the average-cost basis, and realised profit."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PricePoint',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('market', fields.ForeignKeyField('models.Market', source_field='market_id', db_constraint=True, to_field='id', related_name='price_points', on_delete=OnDelete.CASCADE)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('at_epoch', fields.BigIntField()),
                ('probabilities', fields.TextField(unique=False)),
            ],
            options={'table': 'price_points', 'app': 'models', 'indexes': [Index(fields=['market_id', 'at_epoch'])], 'pk_attr': 'id', 'table_description': "The market's probabilities after a change (creation, each trade, settlement)."},
            bases=['Model'],
        ),
    ]
