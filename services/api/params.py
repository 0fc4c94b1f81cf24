"""Validated path parameters, declared once for every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from schemas.contract import ID_PATTERN

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
QUARTER_PATTERN = r"^\d{4}-Q[1-4]$"

ContractIdPath = Annotated[str, Path(pattern=ID_PATTERN, examples=["ACME-CRUSH-01"])]
DeviceIdPath = Annotated[str, Path(pattern=ID_PATTERN, examples=["crusher-07"])]
PeriodPath = Annotated[str, Path(pattern=PERIOD_PATTERN, examples=["2026-10"])]
QuarterPath = Annotated[str, Path(pattern=QUARTER_PATTERN, examples=["2026-Q3"])]
RowIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="a database id (bigint)")]
