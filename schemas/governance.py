"""Shapes of joint governance (spec §7): disputes and corrective actions as posted.

Party fields name the side acting ("provider" or "customer"); a provider or
customer token acts for its own side, so only an admin needs to send one.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.fields import ID_PATTERN
from schemas.telemetry import Annotation
from schemas.vocabulary import DisputeOutcome, KpiName, LineKind, Party

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]
DeviceId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
PERIOD_PATTERN = r"^[1-9]\d{3}-(0[1-9]|1[0-2])$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DisputeIn(_In):
    """A dispute of a draft statement's line (or the whole statement) or of an annotation."""

    contract_id: Annotated[str, StringConstraints(pattern=ID_PATTERN)]
    period: Annotated[str, StringConstraints(pattern=PERIOD_PATTERN)]
    line_kind: LineKind | None = None
    kpi: KpiName | None = None
    annotation_id: RowId | None = None
    reason: Text
    party: Party | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> DisputeIn:
        """An annotation dispute is about the annotation, not about a line."""
        if self.annotation_id is not None and (self.line_kind or self.kpi):
            raise ValueError("dispute either an annotation or a statement line, not both")
        return self


class ResolveIn(_In):
    """The other party's resolution; an upheld dispute may carry the annotation it becomes."""

    outcome: DisputeOutcome
    note: Text
    annotation: Annotation | None = None
    party: Party | None = None

    @model_validator(mode="after")
    def _annotation_upholds(self) -> ResolveIn:
        if self.annotation is not None and self.outcome != "upheld":
            raise ValueError("only an upheld dispute becomes an annotation")
        return self


class ActionIn(_In):
    """A corrective action (spec §7.4): work owned by one party, with a due date."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    owner: Party
    kpi: KpiName | None = None
    devices: list[DeviceId] = Field(default_factory=list, max_length=1000)
    due: date
    proposal_id: RowId | None = None


class ActionCloseIn(_In):
    """Completing (``note`` optional) or dropping (``reason`` required) an action."""

    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
