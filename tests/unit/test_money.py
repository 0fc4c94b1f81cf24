"""Money rounding (spec §3.3): ISO 4217 minor units, half-even, never float."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.money import (
    MINOR_UNITS,
    UnknownCurrency,
    format_money,
    minor_unit,
    round_kpi,
    round_money,
)

amounts = st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, places=8)
currencies = st.sampled_from(sorted(MINOR_UNITS))


def test_eur_has_two_decimals_and_rounds_half_even() -> None:
    assert round_money(Decimal("0.125"), "EUR") == Decimal("0.12")
    assert round_money(Decimal("0.135"), "EUR") == Decimal("0.14")
    assert round_money(Decimal("37.455"), "USD") == Decimal("37.46")


def test_jpy_has_no_minor_unit() -> None:
    assert minor_unit("JPY") == 0
    assert round_money(Decimal("1200.5"), "JPY") == Decimal("1200")
    assert round_money(Decimal("1201.5"), "JPY") == Decimal("1202")
    assert format_money(Decimal("1200"), "JPY") == "1200"


def test_kwd_and_bhd_have_three_decimals() -> None:
    assert minor_unit("KWD") == 3
    assert minor_unit("BHD") == 3
    assert format_money(Decimal("1.2345"), "KWD") == "1.234"


@pytest.mark.parametrize(
    ("currency", "places"),
    [("EUR", 2), ("USD", 2), ("SEK", 2), ("CLP", 0), ("KRW", 0), ("ISK", 0), ("CLF", 4)],
)
def test_minor_units_follow_iso_4217(currency: str, places: int) -> None:
    assert minor_unit(currency) == places


def test_unknown_currency_is_an_error_naming_the_code() -> None:
    with pytest.raises(UnknownCurrency, match="XYZ"):
        round_money(Decimal(1), "XYZ")


def test_rounding_never_produces_negative_zero() -> None:
    assert format_money(Decimal("-0.001"), "EUR") == "0.00"


def test_format_money_is_positional_even_for_large_amounts() -> None:
    assert format_money(Decimal("1E+7"), "EUR") == "10000000.00"


def test_kpi_values_round_half_even_to_six_places() -> None:
    assert round_kpi(Decimal("0.9999995")) == Decimal("1.000000")
    assert round_kpi(Decimal("0.1234565")) == Decimal("0.123456")
    assert round_kpi(Decimal("0.1234575")) == Decimal("0.123458")


def test_every_code_is_three_uppercase_letters() -> None:
    assert all(len(code) == 3 and code.isalpha() and code.isupper() for code in MINOR_UNITS)


@given(amounts, currencies)
def test_rounded_money_is_within_half_a_minor_unit(amount: Decimal, currency: str) -> None:
    rounded = round_money(amount, currency)
    assert abs(rounded - amount) <= Decimal(1).scaleb(-minor_unit(currency)) / 2
    assert rounded.as_tuple().exponent == -minor_unit(currency)


@given(amounts, currencies)
def test_rounding_money_twice_changes_nothing(amount: Decimal, currency: str) -> None:
    once = round_money(amount, currency)
    assert round_money(once, currency) == once
    assert format_money(once, currency) == format_money(amount, currency)
