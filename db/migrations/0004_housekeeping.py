from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0003_positions_prices_idempotency')]

    initial = False

    operations = [
        ops.CreateModel(
            name='JobRun',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('job', fields.CharField(max_length=64)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('started_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outcome', fields.CharField(max_length=16)),
                ('rows', fields.BigIntField(default=0)),
                ('worker', fields.CharField(max_length=100)),
                ('error', fields.CharField(default='', max_length=300)),
            ],
            options={'table': 'housekeeping_runs', 'app': 'models', 'unique_together': (('job', 'due_at'),), 'pk_attr': 'id', 'table_description': 'One run of a housekeeping job: its slot, its worker, the rows it changed, its outcome.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='JobState',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('next_run_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_due_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'housekeeping_jobs', 'app': 'models', 'pk_attr': 'name', 'table_description': "A housekeeping job's schedule: when its next slot is due and who holds the current run."},
            bases=['Model'],
        ),
        # The purges' range scans. AddIndex, not db_index=True: Tortoise's AlterField rebuilds
        # a SQLite table and loses its unique_together constraints (idempotency_keys' (user, key)).
        ops.AddIndex(
            model_name='IdempotencyKey',
            index=Index(fields=['created_at']),
        ),
        ops.AddIndex(
            model_name='Session',
            index=Index(fields=['expires_at']),
        ),
    ]
