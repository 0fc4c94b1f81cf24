"""Building blocks of the response models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Number = int | float
"""A ratio or quantity as a JSON number (integral values stay integers)."""

DecimalText = Annotated[str, Field(description="exact decimal as a string", examples=["12.50"])]
"""Money (and other exact decimals) as a decimal string, never a float."""

Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
"""An instant as RFC 3339 text (as produced by ``datetime.isoformat``)."""

DateText = Annotated[str, Field(json_schema_extra={"format": "date"})]
PeriodText = Annotated[str, Field(pattern=r"^\d{4}-\d{2}$", examples=["2026-10"])]

JsonObject = dict[str, Any]
"""A nested JSON object whose shape depends on its kind (documented in docs/)."""


class Out(BaseModel):
    """A response body whose keys are all known: the document forbids any other
    key, so the suite's conformance check fails on a drift, while at run time an
    unexpected key still passes through rather than turning an answer into a 500."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})


class OpenOut(BaseModel):
    """A response body that others may extend with more keys (they pass through)."""

    model_config = ConfigDict(extra="allow")


class DecisionOut(Out):
    """One party's recorded decision (spec §7.1)."""

    party: str | None
    decision: str
    by: str | None
    at: Timestamp
    reason: str | None
    as_admin: bool


def returns(model: Any) -> dict[str, Any]:
    """A route's response model, keeping the body as the route built it: keys it left
    out stay out (no ``null`` filled in), extra keys of open models pass through."""
    return {"response_model": model, "response_model_exclude_unset": True}
