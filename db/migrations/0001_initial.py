from tortoise import migrations
from tortoise.migrations import operations as ops
from db.models import MarketState, Role
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Category',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('slug', fields.CharField(unique=True, max_length=120)),
                ('name', fields.CharField(max_length=120)),
                ('parent', fields.ForeignKeyField('models.Category', source_field='parent_id', null=True, db_constraint=True, to_field='id', related_name='children', on_delete=OnDelete.RESTRICT)),
                ('path', fields.CharField(db_index=True, max_length=255)),
                ('depth', fields.SmallIntField(default=0)),
                ('position', fields.IntField(default=0)),
            ],
            options={'table': 'categories', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A node of the category tree (Politics › Diplomacy › Bilateral Relations).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Tag',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('slug', fields.CharField(unique=True, max_length=120)),
                ('name', fields.CharField(max_length=120)),
            ],
            options={'table': 'tags', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A topic label shared by articles and markets.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('username', fields.CharField(unique=True, max_length=32)),
                ('display_name', fields.CharField(max_length=80)),
                ('password_hash', fields.CharField(default='', max_length=255)),
                ('role', fields.CharEnumField(default=Role.READER, description='READER: READER\nAUTHOR: AUTHOR\nMODERATOR: MODERATOR\nADMIN: ADMIN', enum_type=Role, max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'users', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An account: a reader, a staff member behind a byline, a moderator or an admin.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Author',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('slug', fields.CharField(unique=True, max_length=120)),
                ('name', fields.CharField(max_length=120)),
                ('bio', fields.TextField(null=True, unique=False)),
                ('user', fields.OneToOneField('models.User', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='author_profile', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'authors', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A byline. Optionally backed by a staff account.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Article',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('slug', fields.CharField(unique=True, max_length=200)),
                ('title', fields.CharField(max_length=300)),
                ('excerpt', fields.TextField(unique=False)),
                ('body', fields.TextField(unique=False)),
                ('word_count', fields.IntField(default=0)),
                ('published_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('featured', fields.BooleanField(default=False, db_index=True)),
                ('author', fields.ForeignKeyField('models.Author', source_field='author_id', db_constraint=True, to_field='id', related_name='articles', on_delete=OnDelete.RESTRICT)),
                ('category', fields.ForeignKeyField('models.Category', source_field='category_id', db_constraint=True, to_field='id', related_name='articles', on_delete=OnDelete.RESTRICT)),
                ('comment_count', fields.IntField(default=0)),
                ('comment_seq', fields.IntField(default=0)),
            ],
            options={'table': 'articles', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A published story.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ArticleTag',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('article', fields.ForeignKeyField('models.Article', source_field='article_id', db_constraint=True, to_field='id', related_name='tag_links', on_delete=OnDelete.CASCADE)),
                ('tag', fields.ForeignKeyField('models.Tag', source_field='tag_id', db_constraint=True, to_field='id', related_name='article_links', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'article_tags', 'app': 'models', 'unique_together': (('article', 'tag'),), 'pk_attr': 'id', 'table_description': 'An article carries a tag.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Comment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('article', fields.ForeignKeyField('models.Article', source_field='article_id', db_constraint=True, to_field='id', related_name='comments', on_delete=OnDelete.CASCADE)),
                ('parent', fields.ForeignKeyField('models.Comment', source_field='parent_id', null=True, db_constraint=True, to_field='id', related_name='replies', on_delete=OnDelete.RESTRICT)),
                ('author', fields.ForeignKeyField('models.User', source_field='author_id', db_constraint=True, to_field='id', related_name='comments', on_delete=OnDelete.RESTRICT)),
                ('sequence', fields.IntField()),
                ('body', fields.TextField(unique=False)),
                ('body_html', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('edited_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('deleted', fields.BooleanField(default=False)),
                ('reply_count', fields.IntField(default=0)),
            ],
            options={'table': 'comments', 'app': 'models', 'unique_together': (('article', 'sequence'),), 'indexes': [Index(fields=['article_id', 'parent_id', 'created_at']), Index(fields=['parent_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'A comment or a reply. Deletion is soft: the comment keeps its place in the thread.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Market',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('slug', fields.CharField(unique=True, max_length=200)),
                ('question', fields.CharField(max_length=300)),
                ('description', fields.TextField(unique=False)),
                ('resolution_criteria', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_by', fields.ForeignKeyField('models.User', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='markets_created', on_delete=OnDelete.SET_NULL)),
                ('state', fields.CharEnumField(default=MarketState.OPEN, description='OPEN: OPEN\nRESOLVED: RESOLVED\nCANCELLED: CANCELLED', enum_type=MarketState, max_length=16)),
                ('closes_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('resolved_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('resolved_outcome_id', fields.IntField(null=True)),
                ('liquidity_cents', fields.BigIntField()),
                ('volume_cents', fields.BigIntField(default=0)),
                ('trader_count', fields.IntField(default=0)),
                ('odds_seq', fields.IntField(default=0)),
            ],
            options={'table': 'markets', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A prediction market run by an LMSR market maker.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MarketArticle',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('market', fields.ForeignKeyField('models.Market', source_field='market_id', db_constraint=True, to_field='id', related_name='article_links', on_delete=OnDelete.CASCADE)),
                ('article', fields.ForeignKeyField('models.Article', source_field='article_id', db_constraint=True, to_field='id', related_name='market_links', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'market_articles', 'app': 'models', 'unique_together': (('market', 'article'),), 'pk_attr': 'id', 'table_description': 'A market is discussed by an article.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MarketTag',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('market', fields.ForeignKeyField('models.Market', source_field='market_id', db_constraint=True, to_field='id', related_name='tag_links', on_delete=OnDelete.CASCADE)),
                ('tag', fields.ForeignKeyField('models.Tag', source_field='tag_id', db_constraint=True, to_field='id', related_name='market_links', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'market_tags', 'app': 'models', 'unique_together': (('market', 'tag'),), 'pk_attr': 'id', 'table_description': 'A market carries a tag.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Outcome',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('market', fields.ForeignKeyField('models.Market', source_field='market_id', db_constraint=True, to_field='id', related_name='outcomes', on_delete=OnDelete.CASCADE)),
                ('position', fields.SmallIntField()),
                ('label', fields.CharField(max_length=120)),
                ('shares_units', fields.BigIntField(default=0)),
            ],
            options={'table': 'outcomes', 'app': 'models', 'unique_together': (('market', 'position'),), 'pk_attr': 'id', 'table_description': 'One answer of a market. shares_units is the LMSR quantity q in 1/10,000 shares.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Trade',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('market', fields.ForeignKeyField('models.Market', source_field='market_id', db_constraint=True, to_field='id', related_name='trades', on_delete=OnDelete.RESTRICT)),
                ('outcome', fields.ForeignKeyField('models.Outcome', source_field='outcome_id', db_constraint=True, to_field='id', related_name='trades', on_delete=OnDelete.RESTRICT)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='trades', on_delete=OnDelete.RESTRICT)),
                ('shares_units', fields.BigIntField()),
                ('amount_cents', fields.BigIntField()),
                ('probability_before', fields.FloatField()),
                ('probability_after', fields.FloatField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'trades', 'app': 'models', 'indexes': [Index(fields=['market_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'One executed purchase (shares > 0) or sale (shares < 0).'},
            bases=['Model'],
        ),
    ]
