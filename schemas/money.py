"""Money and KPI rounding: the one place where decimals are quantized.

Every amount on a statement is a ``Decimal`` rounded half-even to the minor unit
of its ISO 4217 currency (spec §3.3), and every KPI value that enters a money
formula is rounded half-even to 6 places (§3.2). Floats never appear: they
cannot represent 0.1 and would make two runs of the same statement disagree.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

PRECISION = 50
KPI_PLACES = 6


def _codes(text: str) -> list[str]:
    return text.split()


_ZERO_DIGIT = _codes("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF")
_THREE_DIGIT = _codes("BHD IQD JOD KWD LYD OMR TND")
_FOUR_DIGIT = _codes("CLF UYW")
_TWO_DIGIT = _codes(
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD "
    "BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD "
    "EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR "
    "IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP "
    "MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN "
    "QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL "
    "THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG ZAR ZMW "
    "ZWG ZWL"
)

MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(_TWO_DIGIT, 2),
    **dict.fromkeys(_ZERO_DIGIT, 0),
    **dict.fromkeys(_THREE_DIGIT, 3),
    **dict.fromkeys(_FOUR_DIGIT, 4),
}
"""ISO 4217 minor units of the active currencies (list one), plus a few recently
replaced codes still seen in ERP exports (ANG, SLL, CUC, ZWL)."""


class UnknownCurrency(ValueError):
    """A currency code that is not an active ISO 4217 currency with a minor unit."""

    def __init__(self, currency: str) -> None:
        super().__init__(f"unknown currency {currency!r}: expected an ISO 4217 code such as EUR")
        self.currency = currency


def decimal_context() -> AbstractContextManager[Context]:
    """A local context wide enough that no intermediate result is ever rounded.

    50 significant digits hold any realistic amount times any ratio exactly; only
    ``round_money`` and ``round_kpi`` round, and they say how.
    """
    return localcontext(Context(prec=PRECISION, rounding=ROUND_HALF_EVEN))


def minor_unit(currency: str) -> int:
    """Number of decimal places of ``currency`` (EUR 2, JPY 0, KWD 3)."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise UnknownCurrency(currency) from None


def is_known_currency(currency: str) -> bool:
    """Whether ``currency`` can be settled (it has a known minor unit)."""
    return currency in MINOR_UNITS


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-even to the minor unit of ``currency``, never ``-0``."""
    exponent = Decimal(1).scaleb(-minor_unit(currency))
    with decimal_context():
        return amount.quantize(exponent, rounding=ROUND_HALF_EVEN) + 0


def round_kpi(value: Decimal) -> Decimal:
    """A KPI value rounded half-even to 6 places, as it enters money formulas."""
    with decimal_context():
        return value.quantize(Decimal(1).scaleb(-KPI_PLACES), rounding=ROUND_HALF_EVEN) + 0


def format_money(amount: Decimal, currency: str) -> str:
    """The statement's text form of an amount: "8000.00", JPY "1200", KWD "1.250"."""
    return format(round_money(amount, currency), "f")


def plain(value: Decimal) -> str:
    """A decimal in positional notation without trailing zeros, for explanations."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text
