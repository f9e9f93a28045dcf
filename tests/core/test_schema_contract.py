"""The committed schema is the printed schema, and every part of it is described."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
)

from api.printer import printed_schema
from api.schema import build_schema
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == printed_schema(), "schema.graphql drifted: run `make schema` and commit it"


def test_every_type_field_argument_and_enum_value_has_a_description() -> None:
    schema = build_schema(Settings())._schema
    missing: list[str] = []
    for name, type_ in schema.type_map.items():
        if name.startswith("__") or name in ("String", "Int", "Float", "Boolean", "ID"):
            continue
        if not type_.description:
            missing.append(name)
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in type_.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    if not arg.description:
                        missing.append(f"{name}.{field_name}({arg_name})")
        if isinstance(type_, GraphQLEnumType):
            for value_name, value in type_.values.items():
                if not value.description:
                    missing.append(f"{name}.{value_name}")
        if isinstance(type_, GraphQLScalarType) and not type_.description:
            missing.append(name)
    assert missing == []


QUERY_FIELDS = [
    "node",
    "nodes",
    "article",
    "articles",
    "author",
    "authors",
    "tag",
    "tags",
    "category",
    "categories",
    "market",
    "markets",
    "stats",
]
ARTICLE_FIELDS = [
    "id",
    "slug",
    "title",
    "excerpt",
    "body",
    "publishedAt",
    "updatedAt",
    "readingTimeMinutes",
    "featured",
    "author",
    "category",
    "breadcrumb",
    "tags",
    "commentCount",
    "comments",
    "relatedArticles",
    "markets",
]


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema(Settings())._schema


@pytest.mark.parametrize(
    ("type_name", "field"),
    [("Query", field) for field in QUERY_FIELDS] + [("Article", field) for field in ARTICLE_FIELDS],
    ids=[f"Query.{field}" for field in QUERY_FIELDS]
    + [f"Article.{field}" for field in ARTICLE_FIELDS],
)
def test_contract_names_exist(schema: GraphQLSchema, type_name: str, field: str) -> None:
    type_ = schema.query_type if type_name == "Query" else schema.type_map[type_name]
    assert isinstance(type_, GraphQLObjectType)
    assert field in type_.fields, field


def test_article_connection_has_exactly_the_contract_fields(schema: GraphQLSchema) -> None:
    connection = schema.type_map["ArticleConnection"]
    assert isinstance(connection, GraphQLObjectType)
    assert set(connection.fields) == {"edges", "nodes", "pageInfo", "totalCount"}


def test_readme_documents_every_setting() -> None:
    import re

    source = (ROOT / "settings.py").read_text()
    env_vars = set(re.findall(r'_(?:int|str|bool|list|rate)\(\s*"([A-Z_]+)"', source))
    assert len(env_vars) >= 15
    readme = (ROOT / "README.md").read_text()
    assert [name for name in sorted(env_vars) if f"`{name}`" not in readme] == []


async def test_readme_examples_return_what_they_show(client: object) -> None:
    import re

    from tests.conftest import GraphQLClient

    assert isinstance(client, GraphQLClient)
    readme = (ROOT / "README.md").read_text()
    blocks = [
        b
        for b in re.findall(r"```graphql\n(.*?)```", readme, re.S)
        if not b.lstrip().startswith("subscription")
    ]
    assert len(blocks) == 6
    # A reader's profile, run as shown (README's figures are alice's on the demo data).
    assert blocks[3].lstrip().startswith("query Profile")
    profile = (await client.data(blocks.pop(3), {"username": "alice"}))["user"]
    assert profile["username"] == "alice"
    assert f'"totalCount": {profile["comments"]["totalCount"]}' in readme
    # The newsroom's draft (it needs an author's token: checked against the schema) and the
    # search, run as shown.
    from graphql import parse, validate

    from api.schema import build_schema
    from settings import Settings

    schema = build_schema(Settings())._schema
    assert blocks[3].lstrip().startswith("mutation Draft")
    assert validate(schema, parse(blocks[3])) == []
    found = (await client.data(blocks[4]))["search"]
    assert found["totalCount"] >= 1 and found["edges"][0]["node"]["snippet"]
    home = await client.data(blocks[0])
    assert home["latest"]["totalCount"] == 50
    featured = home["featured"]["nodes"][0]
    assert featured["author"] == {"name": "Oliver Scott", "initials": "OS"}
    assert f'"readingTimeMinutes": {featured["readingTimeMinutes"]}' in readme
    slug = "central-asian-leaders-strengthen-ties-as-azerbaijan-joins-forum"
    article = (await client.data(blocks[1], {"slug": slug}))["article"]
    assert f'"id": "{article["id"]}"' in readme
    assert f'"commentCount": {article["commentCount"]},' in readme
    market_slug = article["markets"][0]["slug"]
    assert f'{{"slug": "{market_slug}"}}' in readme
    market = (await client.data(blocks[2], {"slug": market_slug}))["market"]
    assert f'"id": "{market["id"]}"' in readme
    assert f'"closesAt": "{market["closesAt"]}"' in readme
    assert f'"liquidity": "{market["liquidity"]}"' in readme


def test_readme_subscriptions_are_valid_documents() -> None:
    import re

    from graphql import parse, validate

    readme = (ROOT / "README.md").read_text()
    blocks = [
        b
        for b in re.findall(r"```graphql\n(.*?)```", readme, re.S)
        if b.lstrip().startswith("subscription")
    ]
    assert blocks
    schema = build_schema(Settings())._schema
    for block in blocks:
        assert validate(schema, parse(block)) == []
