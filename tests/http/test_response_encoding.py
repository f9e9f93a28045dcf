"""Response bodies: orjson's UTF-8, json's fallback for what orjson refuses, the size bound in
bytes (app.http.GraphQLApp.encode_json)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from app.http import GraphQLApp


def encode(data: Any, limit: int = 1000) -> str:
    owner = SimpleNamespace(settings=SimpleNamespace(max_response_bytes=limit))
    return GraphQLApp.encode_json(owner, data)  # type: ignore[arg-type]


def test_compact_utf8_that_parses_back() -> None:
    data = {"data": {"title": "Zürich – Ташкент 🚀", "n": 3, "p": 0.1, "tiny": 1e-05, "x": None}}
    encoded = encode(data)
    assert (
        encoded == '{"data":{"title":"Zürich – Ташкент 🚀","n":3,"p":0.1,"tiny":0.00001,"x":null}}'
    )
    assert json.loads(encoded) == data


def test_what_orjson_refuses_is_written_by_json() -> None:
    data = {"data": {"odd": "a\ud800b", "big": 2**70}}
    encoded = encode(data)
    assert encoded == '{"data":{"odd":"a\\ud800b","big":1180591620717411303424}}'


def test_the_bound_counts_bytes_not_characters() -> None:
    # 300 characters, 600 bytes in UTF-8: over a 500-byte bound.
    body = encode({"data": {"s": "é" * 300}}, limit=500)
    answer = json.loads(body)
    assert answer["data"] is None
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["RESPONSE_TOO_LARGE"]
    assert json.loads(encode({"data": {"s": "e" * 300}}, limit=500)) == {"data": {"s": "e" * 300}}
