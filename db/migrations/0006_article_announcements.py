"""When articlePublished subscribers were told an article went live (the scheduler tells them
of scheduled articles once, at their time)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_newsroom')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Article',
            name='announced_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        # What is live already went live before anyone could subscribe: nothing to tell.
        ops.RunSQL(
            "UPDATE articles SET announced_at = published_at "
            "WHERE state = 'PUBLISHED' AND announced_at IS NULL AND published_at <= CURRENT_TIMESTAMP",
            reverse_sql="",
        ),
    ]
