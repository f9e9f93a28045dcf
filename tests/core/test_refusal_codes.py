"""The domain's refusal codes and the API's ErrorCode are one list."""

from __future__ import annotations

import pytest

from api.core.refusals import ErrorCode, user_error
from refusals import DESCRIPTIONS, Refusal, RefusalCode, not_found, validation


def test_every_refusal_code_is_an_error_code_and_back_in_the_same_order() -> None:
    assert [code.name for code in ErrorCode] == [code.name for code in RefusalCode]
    assert [code.value for code in ErrorCode] == [code.value for code in RefusalCode]


def test_error_codes_carry_the_domain_descriptions() -> None:
    definition = ErrorCode.__strawberry_definition__  # type: ignore[attr-defined]
    assert definition.description == "Why a mutation was refused."
    printed = [(value.name, value.description) for value in definition.values]
    assert printed == [(code.name, code.description) for code in RefusalCode]
    assert set(DESCRIPTIONS) == set(RefusalCode)
    assert all(description.endswith(".") for description in DESCRIPTIONS.values())


@pytest.mark.parametrize("code", list(RefusalCode))
def test_user_error_answers_every_code(code: RefusalCode) -> None:
    error = user_error(Refusal(code, "No.", ["field"], 3))
    assert error.code is ErrorCode[code.name]
    assert (error.message, error.field, error.retry_after_seconds) == ("No.", ["field"], 3)


def test_a_refusal_takes_only_known_codes() -> None:
    assert Refusal("VALIDATION", "No.").code is RefusalCode.VALIDATION  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Refusal("NOT_A_CODE", "No.")  # type: ignore[arg-type]
    assert validation("No.", "body").code is RefusalCode.VALIDATION
    assert not_found("No.").code is RefusalCode.NOT_FOUND
