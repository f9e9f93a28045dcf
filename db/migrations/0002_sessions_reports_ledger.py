from tortoise import migrations
from tortoise.migrations import operations as ops
from db.models import AccountKind
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CommentReport',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('comment', fields.ForeignKeyField('models.Comment', source_field='comment_id', db_constraint=True, to_field='id', related_name='reports', on_delete=OnDelete.CASCADE)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='reports', on_delete=OnDelete.CASCADE)),
                ('reason', fields.CharField(max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'comment_reports', 'app': 'models', 'unique_together': (('comment', 'user'),), 'pk_attr': 'id', 'table_description': 'A user flagged a comment for moderators (once per user and comment).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LedgerAccount',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharEnumField(description='ISSUER: ISSUER\nUSER: USER\nMARKET: MARKET', enum_type=AccountKind, max_length=16)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='ledger_accounts', on_delete=OnDelete.RESTRICT)),
                ('market', fields.ForeignKeyField('models.Market', source_field='market_id', null=True, db_constraint=True, to_field='id', related_name='ledger_accounts', on_delete=OnDelete.RESTRICT)),
                ('balance_cents', fields.BigIntField(default=0)),
            ],
            options={'table': 'ledger_accounts', 'app': 'models', 'unique_together': (('kind', 'user'), ('kind', 'market')), 'pk_attr': 'id', 'table_description': "A balance in the double-entry ledger: a user's wallet, a market maker, or the issuer."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LedgerTransaction',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('memo', fields.CharField(default='', max_length=200)),
            ],
            options={'table': 'ledger_transactions', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One movement of money: its entries sum to zero.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LedgerEntry',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('transaction', fields.ForeignKeyField('models.LedgerTransaction', source_field='transaction_id', db_constraint=True, to_field='id', related_name='entries', on_delete=OnDelete.RESTRICT)),
                ('account', fields.ForeignKeyField('models.LedgerAccount', source_field='account_id', db_constraint=True, to_field='id', related_name='entries', on_delete=OnDelete.RESTRICT)),
                ('amount_cents', fields.BigIntField()),
            ],
            options={'table': 'ledger_entries', 'app': 'models', 'indexes': [Index(fields=['account_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One side of a movement: ``amount_cents`` added to (or, negative, taken from) an account.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Session',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'sessions', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A login: an opaque bearer token, stored as its SHA-256 (the token itself is never kept).'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Comment',
            name='report_count',
            field=fields.IntField(default=0),
        ),
        # The issuer: the one account that creates credits (its balance is minus all it issued).
        ops.RunSQL(
            "INSERT INTO ledger_accounts (kind, balance_cents) VALUES ('ISSUER', 0)",
            reverse_sql="DELETE FROM ledger_accounts WHERE kind = 'ISSUER'",
        ),
    ]
