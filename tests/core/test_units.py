"""Pure pieces: global IDs, cursors, the Decimal scalar, LMSR prices, settings."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from tortoise.fields.data import DatetimeField

from api.comments.lists import COMMENT_ORDERS
from api.core.errors import BadUserInput
from api.core.node import from_global_id, to_global_id
from api.core.pagination import Ordering, SortKey, decode_cursor, encode_cursor
from api.core.scalars import parse_decimal, serialize_decimal
from api.news.lists import ARTICLE_ORDERS
from db import models
from db.sql import _datetime_reader
from markets import lmsr
from settings import SettingsError, load_settings


def test_global_ids_round_trip_and_name_their_type() -> None:
    gid = to_global_id("Article", 42)
    assert from_global_id(gid) == ("Article", 42)
    assert from_global_id(gid, "Article") == ("Article", 42)
    with pytest.raises(BadUserInput):
        from_global_id(gid, "Comment")


@pytest.mark.parametrize(
    "bad",
    # "Article:x" and "Article:-1" in base64.
    ["", "!!!", to_global_id("Nope", 1), "QXJ0aWNsZTp4", "QXJ0aWNsZTotMQ=="],
    ids=["empty", "not-base64", "unknown-type", "non-numeric-pk", "negative-pk"],
)
def test_global_ids_reject_garbage(bad: str) -> None:
    with pytest.raises(BadUserInput):
        from_global_id(bad)


def test_cursors_round_trip_and_are_tied_to_their_order() -> None:
    newest = ARTICLE_ORDERS["NEWEST"]
    at = datetime(2026, 11, 1, 12, 30, 0, 123456, tzinfo=UTC)
    cursor = encode_cursor(newest, [at, 7])
    assert decode_cursor(cursor, newest) == (at, 7)
    # SQLite hands back the stored text: the cursor is the same.
    assert encode_cursor(newest, ["2026-11-01 12:30:00.123456+00:00", 7]) == cursor
    with pytest.raises(BadUserInput):
        decode_cursor(cursor, ARTICLE_ORDERS["OLDEST"])
    with pytest.raises(BadUserInput):
        decode_cursor(cursor, COMMENT_ORDERS["TOP"])


def _reference_cursor(ordering: Ordering, values: list[object]) -> str:
    """The cursor as json + base64 spell it (what encode_cursor wrote before its fast path)."""
    out: list[object] = []
    for key, value in zip(ordering.keys, values, strict=True):
        if key.kind == "datetime":
            moment = datetime.fromisoformat(value) if isinstance(value, str) else value
            assert isinstance(moment, datetime)
            aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
            out.append(aware.astimezone(UTC).isoformat())
        elif key.kind == "str":
            out.append(str(value))
        elif key.kind == "float":
            out.append(float(value))  # type: ignore[arg-type]
        else:
            out.append(int(value))  # type: ignore[call-overload]
    raw = json.dumps([ordering.name, *out], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@given(
    name=st.text(max_size=12),
    at=st.one_of(
        st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-5))])),
        st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat(" ")),
    ),
    text=st.text(max_size=20),
    number=st.floats(allow_nan=True, allow_infinity=True),
    pk=st.integers(min_value=-(2**63), max_value=2**63),
)
@example(name="TOP", at="2026-11-20 10:00:00+00:00", text='é"\\\u2028', number=math.nan, pk=7)
@example(name="é", at=datetime(2026, 1, 1), text="", number=-math.inf, pk=-1)
@example(name="N", at=datetime(2026, 1, 1, tzinfo=UTC), text="x", number=1e-05, pk=2**40)
def test_cursors_are_the_json_and_base64_text_byte_for_byte(
    name: str, at: datetime | str, text: str, number: float, pk: int
) -> None:
    # The fast encoder must write the very text clients already hold cursors of.
    ordering = Ordering(
        name,
        (
            SortKey("a", "datetime", True),
            SortKey("b", "str", False),
            SortKey("c", "float", False),
            SortKey("d", "bigint", True),
        ),
    )
    values: list[object] = [at, text, number, pk]
    assert encode_cursor(ordering, values) == _reference_cursor(ordering, values)


@given(
    at=st.one_of(
        st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=9))])).map(
            lambda d: d.isoformat(" ")
        ),
        st.datetimes(),
        st.sampled_from(["2026-11-20 10:00:00Z", "2026-11-20T10:00:00.5+00:00"]),
    )
)
def test_plain_rows_read_times_as_tortoise_does(at: str | datetime) -> None:
    field = models.Article._meta.fields_map["published_at"]
    assert isinstance(field, DatetimeField)
    parsed = datetime.fromisoformat(at) if isinstance(at, str) else at
    expected = field.to_python_value(parsed)
    from_text, from_driver = _datetime_reader(field)  # as plain_rows applies them
    got = from_text(at) if isinstance(at, str) else from_driver(at)
    assert got == expected
    assert got.tzinfo is expected.tzinfo and got.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "bad",
    # "[]", '["NEWEST",1,2]', '["NEWEST","x",5]' in base64.
    ["", "x", "W10", "WyJORVdFU1QiLDEsMl0", "WyJORVdFU1QiLCJ4Iiw1XQ"],
    ids=["empty", "not-base64", "empty-list", "number-for-a-timestamp", "text-not-a-timestamp"],
)
def test_cursors_reject_garbage(bad: str) -> None:
    with pytest.raises(BadUserInput):
        decode_cursor(bad, ARTICLE_ORDERS["NEWEST"])


@pytest.mark.parametrize("text", ["12.50", "0", "-3.1", "100000000000000.01"])
def test_decimal_scalar_accepts_plain_decimals(text: str) -> None:
    assert parse_decimal(text) == Decimal(text)
    assert serialize_decimal(parse_decimal(text)) == text


@pytest.mark.parametrize(
    "value", ["NaN", "Infinity", "-Infinity", "1E+2", "1e5", " 1", "1.", ".5", "", 12.5, 3, None]
)
def test_decimal_scalar_refuses_everything_else(value: object) -> None:
    with pytest.raises(BadUserInput):
        parse_decimal(value)


def test_decimal_scalar_never_prints_an_exponent() -> None:
    assert serialize_decimal(Decimal("1E+2")) == "100"
    assert serialize_decimal(Decimal(1250).scaleb(-2)) == "12.50"


def test_lmsr_prices_are_a_distribution_without_overflow() -> None:
    b = lmsr.liquidity_parameter(100.0, 2)
    assert lmsr.prices([0.0, 0.0], b) == [0.5, 0.5]
    huge = lmsr.prices([1e9, 0.0, 0.0], b)
    assert huge[0] == 1.0 and math.isclose(sum(huge), 1.0)
    assert math.isfinite(lmsr.cost([1e9, -1e9], b))
    spend = lmsr.shares_for_spend([0.0, 0.0], b, 0, 10.0)
    assert math.isclose(lmsr.cost([spend, 0.0], b) - lmsr.cost([0.0, 0.0], b), 10.0)
    assert math.isclose(lmsr.proceeds_for_sale([spend, 0.0], b, 0, spend), 10.0)
    p_after = lmsr.price_after_purchase(0.5, b, spend)
    assert math.isclose(p_after, lmsr.prices([spend, 0.0], b)[0])


def test_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_PAGE_SIZE", "abc")
    with pytest.raises(SettingsError):
        load_settings()
    monkeypatch.setenv("MAX_PAGE_SIZE", "50")
    monkeypatch.setenv("PORT", "9001")
    settings = load_settings()
    assert (settings.max_page_size, settings.port) == (50, 9001)
