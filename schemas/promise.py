"""The value promised at the sale (spec §7.3): a baseline, promised figures, a tolerance.

Figures are per period: KPIs by their §3.2 names (ratios in [0, 1]) and
``customer_value`` in the contract's currency, computed as in the value model
(throughput x customer_value_per_unit). A promise that names an unknown KPI,
a negative figure or a tolerance outside [0, 1] is refused, naming the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator

from schemas.fields import Ratio, StrictModel, as_money, as_number, json_number
from schemas.vocabulary import CUSTOMER_VALUE, KPI_NAMES, KPIS, RATIO_KPIS

FIGURE_NAMES: tuple[str, ...] = (*KPI_NAMES, CUSTOMER_VALUE)
"""What a promise may name, in the order every listing uses."""


def _figure(key: Any, raw: Any) -> Decimal:
    if key == CUSTOMER_VALUE:
        value = as_money(raw)
    elif key in KPIS:
        value = as_number(raw)
    else:
        raise ValueError(
            f"unknown KPI {key!r}: a promise names KPIs ({', '.join(KPI_NAMES)}) "
            f"or {CUSTOMER_VALUE}"
        )
    if not isinstance(value, Decimal):
        raise ValueError(f"{key}: expected a number, got {raw!r}")
    if value < 0:
        raise ValueError(f"{key} must not be negative, got {raw}")
    if key in RATIO_KPIS and value > 1:
        raise ValueError(f"{key} is a ratio: at most 1, got {raw}")
    return value


def _figures(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    found = {key: _figure(key, raw) for key, raw in value.items()}
    return {key: found[key] for key in FIGURE_NAMES if key in found}


def _dump(figures: dict[str, Decimal]) -> dict[str, Any]:
    return {
        k: format(v, "f") if k == CUSTOMER_VALUE else json_number(v) for k, v in figures.items()
    }


Figures = Annotated[
    dict[str, Decimal],
    BeforeValidator(_figures),
    PlainSerializer(_dump, return_type=dict[str, Any], when_used="json"),
]


class ValuePromise(StrictModel):
    """The business case both parties agreed at the sale, per period."""

    baseline: Figures = Field(default_factory=dict)
    promised: Figures
    tolerance: Ratio = Decimal("0.05")

    @field_validator("promised")
    @classmethod
    def _something_promised(cls, figures: dict[str, Decimal]) -> dict[str, Decimal]:
        if not figures:
            raise ValueError("promise at least one figure")
        return figures
