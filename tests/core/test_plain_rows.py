"""Plain rows (db.sql.plain_rows) are the model instances Tortoise would build, field for field:
the same values of the same types (times aware in the same zone, enums the same members), on
both databases, on a first read and on the reads after it (times and enum members are kept by
their stored text)."""

from __future__ import annotations

from typing import Any

import pytest
from tortoise.models import Model

from db import models
from db.sql import fetch_dicts, plain_rows
from tests.conftest import GraphQLClient

MODELS: list[type[Model]] = [
    models.Article,
    models.Author,
    models.Category,
    models.Tag,
    models.Comment,
    models.User,
    models.Market,
    models.Outcome,
    models.Trade,
]


def _fields(instance: Any, model: type[Model]) -> dict[str, tuple[type, Any, Any]]:
    meta = model._meta
    names = [
        attr
        for group in (meta.db_native_fields, meta.db_default_fields, meta.db_complex_fields)
        for _, attr, _ in group
    ]
    out = {}
    for name in names:
        value = getattr(instance, name)
        out[name] = (type(value), value, getattr(value, "tzinfo", None))
    return out


@pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
async def test_plain_rows_are_what_tortoise_builds(
    client: GraphQLClient, model: type[Model]
) -> None:
    table = model._meta.db_table
    pk = model._meta.db_pk_column
    expected = {row.pk: _fields(row, model) for row in await model.all()}
    assert expected, f"the demo data has no {table}"
    build = plain_rows(model)
    for _ in range(2):  # the second read takes the kept times and members
        rows = await fetch_dicts(f"SELECT * FROM {table} ORDER BY {pk}")
        got = {row.pk: _fields(row, model) for row in map(build, rows)}
        assert got == expected
