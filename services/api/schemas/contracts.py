"""Responses of ``routes/contracts.py``: contract versions as stored, and KPI series."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict

from schemas.contract import ContractTerms
from services.api.schemas.base import Number, Out, Timestamp


class VersionRef(Out):
    version: int
    effective_from: str


class ContractVersionOut(ContractTerms):
    """One version of a contract: its terms (spec §2) with who created it when."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})
    contract_id: str
    provider: str
    customer: str
    version: int
    created_at: Timestamp
    created_by: str | None


class ContractOut(ContractVersionOut):
    """The latest version, with the list of all versions."""

    versions: list[VersionRef]


class ContractPage(Out):
    items: list[ContractVersionOut]
    next_after: str | None


class KpiPoint(Out):
    label: str
    start: Timestamp
    contract_version: int
    kpis: dict[str, Number | None]


class KpiSeries(Out):
    contract_id: str
    granularity: Literal["day", "month"]
    timezone: str
    points: list[KpiPoint]
