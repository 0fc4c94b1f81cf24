"""Value types of every viu shape: money, quantities, ratios, identifiers.

Money values are decimal strings so that "0.10" stays ten cents; ratios and
quantities may be JSON numbers and are converted through their text form, so
0.95 becomes exactly ``Decimal("0.95")``. Contracts, penalty forms and value
promises are all built from these.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)

ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


def json_number(value: Decimal) -> int | float:
    """A ratio or quantity as a JSON number: integral values stay integers."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def as_money(value: Any) -> Any:
    """Money is text ("12.50") or an integer; a float has already lost cents."""
    if isinstance(value, bool | float):
        raise ValueError(f'money must be a decimal string such as "12.50", got the number {value}')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        return _finite(value.strip(), "money")
    return value


def as_number(value: Any) -> Any:
    """Ratios and quantities may be numbers; floats go through text to stay exact."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int | float):
        return _finite(str(value), "number")
    if isinstance(value, str):
        return _finite(value.strip(), "number")
    return value


def _finite(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"invalid {what} {text!r}: expected a decimal such as 12.50") from None
    if not value.is_finite():
        raise ValueError(f"invalid {what} {text!r}: must be finite")
    return value


_as_text = PlainSerializer(lambda v: format(v, "f"), return_type=str, when_used="json")
_as_number = PlainSerializer(json_number, return_type=int | float, when_used="json")

Money = Annotated[Decimal, BeforeValidator(as_money), Field(ge=0), _as_text]
Quantity = Annotated[Decimal, BeforeValidator(as_number), Field(ge=0), _as_number]
PositiveQuantity = Annotated[Decimal, BeforeValidator(as_number), Field(gt=0), _as_number]
Ratio = Annotated[Decimal, BeforeValidator(as_number), Field(ge=0, le=1), _as_number]
Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
NonEmptyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class StrictModel(BaseModel):
    """Unknown fields are errors and values never change after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)
