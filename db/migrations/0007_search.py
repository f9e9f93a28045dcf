"""Full-text search: SQLite FTS5 tables over articles and markets, PostgreSQL weighted
tsvector documents with GIN indexes, each kept in step with its rows by triggers (in the writing
transaction). Triggers hold ``;`` inside ``BEGIN … END``: Tortoise's SQLite runner splits a
script on every ``;``, so each statement goes to the connection on its own (``RunPython``)."""

from tortoise import migrations
from tortoise.migrations import operations as ops

_SQLITE = [
    "CREATE VIRTUAL TABLE article_search USING fts5(title, excerpt, body, content='articles', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER article_search_insert AFTER INSERT ON articles BEGIN "
    "INSERT INTO article_search(rowid, title, excerpt, body) "
    "VALUES (new.id, new.title, new.excerpt, new.body); END",
    "CREATE TRIGGER article_search_delete AFTER DELETE ON articles BEGIN "
    "INSERT INTO article_search(article_search, rowid, title, excerpt, body) "
    "VALUES ('delete', old.id, old.title, old.excerpt, old.body); END",
    "CREATE TRIGGER article_search_update AFTER UPDATE OF title, excerpt, body ON articles BEGIN "
    "INSERT INTO article_search(article_search, rowid, title, excerpt, body) "
    "VALUES ('delete', old.id, old.title, old.excerpt, old.body); "
    "INSERT INTO article_search(rowid, title, excerpt, body) "
    "VALUES (new.id, new.title, new.excerpt, new.body); END",
    "INSERT INTO article_search(article_search) VALUES ('rebuild')",
    "CREATE VIRTUAL TABLE market_search USING fts5(question, description, content='markets', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER market_search_insert AFTER INSERT ON markets BEGIN "
    "INSERT INTO market_search(rowid, question, description) "
    "VALUES (new.id, new.question, new.description); END",
    "CREATE TRIGGER market_search_delete AFTER DELETE ON markets BEGIN "
    "INSERT INTO market_search(market_search, rowid, question, description) "
    "VALUES ('delete', old.id, old.question, old.description); END",
    "CREATE TRIGGER market_search_update AFTER UPDATE OF question, description ON markets BEGIN "
    "INSERT INTO market_search(market_search, rowid, question, description) "
    "VALUES ('delete', old.id, old.question, old.description); "
    "INSERT INTO market_search(rowid, question, description) "
    "VALUES (new.id, new.question, new.description); END",
    "INSERT INTO market_search(market_search) VALUES ('rebuild')",
]

_ARTICLE_DOCUMENT = (
    "setweight(to_tsvector('english', coalesce({r}.title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce({r}.excerpt, '')), 'B') || "
    "setweight(to_tsvector('english', coalesce({r}.body, '')), 'C')"
)
_MARKET_DOCUMENT = (
    "setweight(to_tsvector('english', coalesce({r}.question, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce({r}.description, '')), 'C')"
)

_POSTGRES = [
    "CREATE TABLE article_search (article_id INT PRIMARY KEY REFERENCES articles (id) "
    "ON DELETE CASCADE, document TSVECTOR NOT NULL)",
    "CREATE INDEX article_search_document ON article_search USING GIN (document)",
    "CREATE FUNCTION article_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO article_search (article_id, document) VALUES (NEW.id, "
    + _ARTICLE_DOCUMENT.format(r="NEW")
    + ") ON CONFLICT (article_id) DO UPDATE SET document = EXCLUDED.document; "
    "RETURN NEW; END $$",
    "CREATE TRIGGER article_search_refresh AFTER INSERT OR UPDATE OF title, excerpt, body "
    "ON articles FOR EACH ROW EXECUTE FUNCTION article_search_refresh()",
    "INSERT INTO article_search (article_id, document) SELECT a.id, "
    + _ARTICLE_DOCUMENT.format(r="a")
    + " FROM articles a",
    "CREATE TABLE market_search (market_id INT PRIMARY KEY REFERENCES markets (id) "
    "ON DELETE CASCADE, document TSVECTOR NOT NULL)",
    "CREATE INDEX market_search_document ON market_search USING GIN (document)",
    "CREATE FUNCTION market_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO market_search (market_id, document) VALUES (NEW.id, "
    + _MARKET_DOCUMENT.format(r="NEW")
    + ") ON CONFLICT (market_id) DO UPDATE SET document = EXCLUDED.document; "
    "RETURN NEW; END $$",
    "CREATE TRIGGER market_search_refresh AFTER INSERT OR UPDATE OF question, description "
    "ON markets FOR EACH ROW EXECUTE FUNCTION market_search_refresh()",
    "INSERT INTO market_search (market_id, document) SELECT m.id, "
    + _MARKET_DOCUMENT.format(r="m")
    + " FROM markets m",
]


async def _forward(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    client = schema_editor.client
    statements = _POSTGRES if client.capabilities.dialect == "postgres" else _SQLITE
    for statement in statements:
        await client.execute_query(statement)


class Migration(migrations.Migration):
    dependencies = [('models', '0006_article_announcements')]

    initial = False

    operations = [ops.RunPython(_forward)]
