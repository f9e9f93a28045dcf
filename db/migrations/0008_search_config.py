"""PostgreSQL search reads like SQLite's: documents and queries through a text search
configuration of our own, ``agora_search``: ``english``'s parser and token types, words folded
by ``unaccent`` ("Zürich" = "zurich", as FTS5's ``remove_diacritics 2``), then stemmed by the
Porter stemmer (FTS5's ``porter``) with no stop words (FTS5 has none: "the" is a word on both);
a hyphenated word is indexed by its parts, as FTS5 splits it ("trade-deal" is "trade deal").
The trigger functions are replaced and every existing document rebuilt in this transaction.

``unaccent`` is an extension: ``CREATE EXTENSION`` needs a superuser, or (it is a trusted
extension) a role with CREATE on the database. Without it the migration fails with a message
saying what to run, rather than leaving PostgreSQL accent-sensitive where SQLite is not.

Nothing changes on SQLite. Statements go one by one (``RunPython``), as in 0007.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

CONFIG = "agora_search"

_ARTICLE_DOCUMENT = (
    "setweight(to_tsvector('{c}', coalesce({r}.title, '')), 'A') || "
    "setweight(to_tsvector('{c}', coalesce({r}.excerpt, '')), 'B') || "
    "setweight(to_tsvector('{c}', coalesce({r}.body, '')), 'C')"
)
_MARKET_DOCUMENT = (
    "setweight(to_tsvector('{c}', coalesce({r}.question, '')), 'A') || "
    "setweight(to_tsvector('{c}', coalesce({r}.description, '')), 'C')"
)

UNACCENT = "CREATE EXTENSION IF NOT EXISTS unaccent"
UNACCENT_MISSING = (
    "Migration 0008_search_config needs PostgreSQL's unaccent extension (in the contrib "
    "package) and could not create it: {error}. Run `CREATE EXTENSION unaccent;` in this "
    "database as a superuser (or as a role with CREATE on the database: it is a trusted "
    "extension), then run the migrations again."
)

_POSTGRES = [
    "CREATE TEXT SEARCH DICTIONARY agora_porter (TEMPLATE = snowball, Language = porter)",
    f"CREATE TEXT SEARCH CONFIGURATION {CONFIG} (COPY = english)",
    f"ALTER TEXT SEARCH CONFIGURATION {CONFIG} ALTER MAPPING FOR asciiword, word, "
    "hword_part, hword_asciipart WITH unaccent, agora_porter",
    f"ALTER TEXT SEARCH CONFIGURATION {CONFIG} ALTER MAPPING FOR numword, hword_numpart "
    "WITH unaccent, simple",
    f"ALTER TEXT SEARCH CONFIGURATION {CONFIG} DROP MAPPING FOR asciihword, hword, numhword",
    "CREATE OR REPLACE FUNCTION article_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN INSERT INTO article_search (article_id, document) VALUES (NEW.id, "
    + _ARTICLE_DOCUMENT.format(c=CONFIG, r="NEW")
    + ") ON CONFLICT (article_id) DO UPDATE SET document = EXCLUDED.document; "
    "RETURN NEW; END $$",
    "CREATE OR REPLACE FUNCTION market_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN INSERT INTO market_search (market_id, document) VALUES (NEW.id, "
    + _MARKET_DOCUMENT.format(c=CONFIG, r="NEW")
    + ") ON CONFLICT (market_id) DO UPDATE SET document = EXCLUDED.document; "
    "RETURN NEW; END $$",
    # Every document as the new configuration reads it.
    "INSERT INTO article_search (article_id, document) SELECT a.id, "
    + _ARTICLE_DOCUMENT.format(c=CONFIG, r="a")
    + " FROM articles a ON CONFLICT (article_id) DO UPDATE SET document = EXCLUDED.document",
    "INSERT INTO market_search (market_id, document) SELECT m.id, "
    + _MARKET_DOCUMENT.format(c=CONFIG, r="m")
    + " FROM markets m ON CONFLICT (market_id) DO UPDATE SET document = EXCLUDED.document",
]


async def _forward(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    try:
        await client.execute_query(UNACCENT)
    except Exception as exc:
        raise RuntimeError(UNACCENT_MISSING.format(error=exc)) from exc
    for statement in _POSTGRES:
        await client.execute_query(statement)


class Migration(migrations.Migration):
    dependencies = [("models", "0007_search")]

    initial = False

    operations = [ops.RunPython(_forward)]
