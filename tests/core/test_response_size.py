"""``response_size_over``: the estimate of a response's JSON size, checked against a plain
restatement of its rule (strings +2, objects 2 + each key +4, lists 2 + one per item, anything
else 8) at every limit around the exact figure, subclasses of str, dict and list included."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import pytest

from api.extensions.response import response_size_over


def _estimate(value: Any) -> int:
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, dict):
        return 2 + sum(len(key) + 4 + _estimate(item) for key, item in value.items())
    if isinstance(value, list):
        return 2 + len(value) + sum(_estimate(item) for item in value)
    return 8


class Text(str):
    """A str subclass (an enum's value, say)."""


BODY = "x" * 1000
VALUES: list[Any] = [
    None,
    "",
    "héllo",
    [],
    {},
    {"data": {"article": None}},
    {"data": {"a": [1, 2.5, True, None, "s"], "b": {"c": [{"d": "e"}] * 3}}},
    OrderedDict(a=[Text("t"), {"k": BODY}], b=[[], [[]]]),
    # One string under many keys counts each time.
    {"data": {f"a{i}": {"body": BODY} for i in range(50)}},
]


@pytest.mark.parametrize("value", VALUES)
def test_the_estimate_follows_its_rule_at_every_limit(value: Any) -> None:
    exact = _estimate(value)
    for limit in range(max(exact - 20, 0), exact + 20):
        assert response_size_over(value, limit) is (exact > limit), (limit, exact)
