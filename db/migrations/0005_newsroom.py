"""The newsroom: article states, first publication, old slugs, rendered bodies; the indexes
readers' lists and related articles look articles up by."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from db.models import ArticleState
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_housekeeping')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ArticleHtml',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('article', fields.OneToOneField('models.Article', source_field='article_id', db_constraint=True, to_field='id', related_name='html', on_delete=OnDelete.CASCADE)),
                ('html', fields.TextField(unique=False)),
            ],
            options={'table': 'article_html', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An article body rendered and sanitised (``Article.bodyHtml``), written with the body in'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ArticleSlug',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('slug', fields.CharField(unique=True, max_length=200)),
                ('article', fields.ForeignKeyField('models.Article', source_field='article_id', db_constraint=True, to_field='id', related_name='old_slugs', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'article_slugs', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A slug an article had before its current one: it keeps resolving to the article.'},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='Article',
            options={'table': 'articles', 'app': 'models', 'indexes': [Index(fields=['state', 'published_at']), Index(fields=['category_id'])], 'pk_attr': 'id', 'table_description': 'A story: a draft, a published (or scheduled) article, or an archived one.'},
        ),
        ops.AddField(
            model_name='Article',
            name='first_published_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Article',
            name='state',
            field=fields.CharEnumField(default=ArticleState.PUBLISHED, description='DRAFT: DRAFT\nPUBLISHED: PUBLISHED\nARCHIVED: ARCHIVED', db_default='PUBLISHED', enum_type=ArticleState, max_length=16),
        ),
        # Every article before this migration was published: its slug is frozen from then on.
        ops.RunSQL(
            "UPDATE articles SET first_published_at = published_at WHERE first_published_at IS NULL",
            reverse_sql="",
        ),
        ops.AddIndex(
            model_name='Article',
            index=Index(fields=['state', 'published_at']),
        ),
        ops.AddIndex(
            model_name='Article',
            index=Index(fields=['category_id']),
        ),
        ops.AddIndex(
            model_name='ArticleTag',
            index=Index(fields=['tag_id']),
        ),
    ]
