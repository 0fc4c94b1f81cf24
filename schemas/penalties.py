"""Penalty forms (spec §3.3 step 4): the shapes a KPI rule's ``penalty`` may take.

Each form is one model here, named by the one key that tells it apart
(``{"per_point": ...}``, ``{"credits": [...]}``), and one module under
``services/settlement/penalties/`` that prices it. Adding a form: a model
below, its member in ``Penalty`` and ``PENALTY_FORMS``, and its pricing
module; ``tests/unit/test_penalty_forms.py`` checks that each form here has
its pricing there.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Discriminator, Field, Tag

from schemas.fields import Money, Quantity, Ratio, StrictModel


class PerPointPenalty(StrictModel):
    """A penalty of ``per_point`` for each point the KPI falls short of target."""

    form: ClassVar[str] = "per_point"
    per_point: Money


class Credit(StrictModel):
    """A service credit of ``pct`` of charges_base when the KPI is below ``below``."""

    below: Quantity
    pct: Ratio


class CreditsPenalty(StrictModel):
    """SLA-style credits; the largest applicable ``pct`` wins (they do not add up)."""

    form: ClassVar[str] = "credits"
    credits: list[Credit] = Field(min_length=1)


PENALTY_FORMS: tuple[type[PerPointPenalty | CreditsPenalty], ...] = (
    PerPointPenalty,
    CreditsPenalty,
)
"""Every penalty form, in the order the spec lists them."""
FORM_NAMES: tuple[str, ...] = tuple(f.form for f in PENALTY_FORMS)


def _form_of(value: Any) -> str | None:
    """The form a posted penalty (a dict) or a validated one (a model) has."""
    if isinstance(value, dict):
        return next((name for name in FORM_NAMES if name in value), None)
    return next((f.form for f in PENALTY_FORMS if isinstance(value, f)), None)


_SHAPES = " or ".join(f'{{"{name}": ...}}' for name in FORM_NAMES)

Penalty = Annotated[
    Annotated[PerPointPenalty, Tag("per_point")] | Annotated[CreditsPenalty, Tag("credits")],
    Discriminator(
        _form_of,
        custom_error_type="penalty_shape",
        custom_error_message=f"penalty must be {_SHAPES}",
    ),
]
