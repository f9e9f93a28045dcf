"""Profiles: a user's comments, newest first, are read by (author, time)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0008_search_config')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Comment',
            index=Index(fields=['author_id', 'created_at']),
        ),
    ]
