"""Detector thresholds: the spec's defaults (§4), overridable per contract.

Contracts differ: a 2-point slack is noise for one KPI and a gift for another,
so the parties may tune the thresholds; the defaults are the spec's numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from schemas.db import detector_settings

EXCUSED_BLOCKS = 6
"""excused_creep compares the last quarter with the previous one: six periods."""
PromiseRemedy = Literal["corrective_action", "change_terms"]

Window = Annotated[int, Field(ge=1, le=12)]
Share = Annotated[Decimal, Field(ge=0, le=1)]


class DetectorSettings(BaseModel):
    """Windows and thresholds of the §4 detectors; every field has the spec's default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: Window = 3
    bonus_window: Window = 6
    baseline_window: Window = 6
    slack_points: Annotated[Decimal, Field(ge=0)] = Decimal(2)
    cap_binding_periods: Window = 2
    commitment_upper: Annotated[Decimal, Field(ge=1)] = Decimal("1.30")
    excused_growth: Annotated[Decimal, Field(ge=0)] = Decimal("0.5")
    excused_floor: Share = Decimal("0.05")
    data_gap_share: Share = Decimal("0.02")
    negative_gain_periods: Window = 2
    promise_gap_remedy: PromiseRemedy = "corrective_action"

    @model_validator(mode="after")
    def _counts_fit_window(self) -> DetectorSettings:
        """A count larger than its window could never be reached."""
        for name in ("cap_binding_periods", "negative_gain_periods"):
            if getattr(self, name) > self.window:
                raise ValueError(f"{name} must not exceed window ({self.window})")
        return self

    @property
    def history_needed(self) -> int:
        """How many periods the detectors look at, at most (excused_creep: two blocks)."""
        return max(EXCUSED_BLOCKS, self.window, self.bonus_window, self.baseline_window)

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def load(conn: Connection, contract_id: str) -> DetectorSettings:
    row = conn.execute(
        select(detector_settings.c.settings).where(detector_settings.c.contract_id == contract_id)
    ).first()
    return DetectorSettings() if row is None else DetectorSettings.model_validate(row.settings)


def save(conn: Connection, contract_id: str, value: DetectorSettings, by: str) -> None:
    values = {"settings": value.as_json(), "updated_by": by, "updated_at": datetime.now(UTC)}
    conn.execute(
        pg_insert(detector_settings)
        .values(contract_id=contract_id, **values)
        .on_conflict_do_update(index_elements=["contract_id"], set_=values)
    )
