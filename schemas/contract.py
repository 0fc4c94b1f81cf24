"""Contract terms (spec §2): the single shape used by the API, the store and the engine.

Built from the value types of ``schemas.fields`` (money as decimal strings,
ratios and quantities exact), the penalty forms of ``schemas.penalties`` and
the value promise of ``schemas.promise``. Unknown fields are rejected
everywhere: a misspelt ``penalty_cap_pct`` must fail loudly, not silently
remove the cap.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from schemas.fields import (
    ID_PATTERN,
    Identifier,
    Money,
    NonEmptyText,
    PositiveQuantity,
    Quantity,
    Ratio,
    StrictModel,
    json_number,
)
from schemas.money import is_known_currency
from schemas.penalties import CreditsPenalty, Penalty, PerPointPenalty
from schemas.periods import Period, zone
from schemas.promise import ValuePromise
from schemas.vocabulary import (
    CUSTOMER_VALUE,
    DEFAULT_EXCUSED_CAUSES,
    AnnotationApproval,
    DowntimeCause,
    KpiName,
    MissingDataPolicy,
    UsageBasis,
)

__all__ = [
    "ID_PATTERN",
    "ContractIn",
    "ContractTerms",
    "CreditsPenalty",
    "KpiRule",
    "PerPointPenalty",
    "json_number",
]


class Tier(StrictModel):
    """A price for the slice of billable quantity up to ``up_to`` (null: no limit)."""

    up_to: PositiveQuantity | None
    price: Money


class Usage(StrictModel):
    """The usage charge: which quantity is billed, how tiers apply, the floor."""

    basis: UsageBasis = "throughput"
    mode: Literal["graduated", "volume"] = "graduated"
    minimum_commitment: Quantity = Decimal(0)
    tiers: list[Tier] = Field(min_length=1)

    @field_validator("tiers")
    @classmethod
    def _tiers_sorted(cls, tiers: list[Tier]) -> list[Tier]:
        """Overlapping or unsorted tiers would price some units twice or not at all."""
        for index, tier in enumerate(tiers[:-1]):
            if tier.up_to is None:
                raise ValueError(f"tier {index}: only the last tier may have up_to null")
            following = tiers[index + 1].up_to
            if following is not None and following <= tier.up_to:
                raise ValueError(
                    f"tier {index + 1}: up_to {following} must be greater than "
                    f"{tier.up_to} (tiers must be sorted by up_to)"
                )
        return tiers


class Bonus(StrictModel):
    """A bonus of ``per_point`` for each point the KPI exceeds ``above``."""

    above: Quantity
    per_point: Money


class KpiRule(StrictModel):
    """Target, tolerance and the money attached to one KPI."""

    kpi: KpiName
    target: Quantity
    deadband: Quantity = Decimal(0)
    penalty: Penalty | None = None
    bonus: Bonus | None = None

    @field_validator("bonus")
    @classmethod
    def _bonus_above_target(cls, bonus: Bonus | None, info: ValidationInfo) -> Bonus | None:
        """A bonus threshold under target would reward and penalise the same value."""
        target = info.data.get("target")
        if bonus is not None and target is not None and bonus.above < target:
            raise ValueError(f"bonus.above {bonus.above} must not be below target {target}")
        return bonus


class GainShare(StrictModel):
    """The provider's share of value created above (or, if symmetric, below) baseline."""

    kpi: KpiName = "throughput"
    baseline: Quantity
    value_per_unit: Money
    provider_share: Ratio
    symmetric: bool = False


class Terms(StrictModel):
    """The money terms; only ``fixed_fee`` is required (it may be "0")."""

    fixed_fee: Money
    usage: Usage | None = None
    kpis: list[KpiRule] = Field(default_factory=list)
    penalty_cap_pct: Ratio | None = None
    bonus_cap_pct: Ratio | None = None
    gain_share: GainShare | None = None

    @field_validator("kpis")
    @classmethod
    def _one_rule_per_kpi(cls, rules: list[KpiRule]) -> list[KpiRule]:
        """Two rules for one KPI would charge the same shortfall twice."""
        seen: set[str] = set()
        for rule in rules:
            if rule.kpi in seen:
                raise ValueError(f"duplicate rule for kpi {rule.kpi!r}")
            seen.add(rule.kpi)
        return rules


class ValueModel(StrictModel):
    """What a unit of output is worth to the customer and how value is to be split."""

    customer_value_per_unit: Money
    agreed_provider_share: Ratio
    tolerance: Ratio = Decimal("0.10")


class ContractTerms(StrictModel):
    """One contract version: everything that settlement depends on."""

    currency: str
    timezone: str
    devices: list[Identifier] = Field(min_length=1)
    effective_from: str
    unit: NonEmptyText
    rated_capacity_per_hour: PositiveQuantity
    missing_data: MissingDataPolicy = "downtime"
    excused_causes: list[DowntimeCause] = Field(
        default_factory=lambda: list(DEFAULT_EXCUSED_CAUSES)
    )
    terms: Terms
    value_model: ValueModel | None = None
    value_promise: ValuePromise | None = None
    annotation_approval: AnnotationApproval = "counterparty"

    @field_validator("currency", mode="before")
    @classmethod
    def _known_currency(cls, value: Any) -> Any:
        """Only currencies with a known minor unit can be rounded correctly."""
        if isinstance(value, str) and is_known_currency(value.strip().upper()):
            return value.strip().upper()
        raise ValueError(f"unknown currency {value!r}: expected an ISO 4217 code such as EUR")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """Period bounds need the zone's DST rules."""
        zone(value)
        return value

    @field_validator("devices")
    @classmethod
    def _unique_devices(cls, devices: list[str]) -> list[str]:
        """A device listed twice would be counted twice in every fleet KPI."""
        seen: set[str] = set()
        for device in devices:
            if device in seen:
                raise ValueError(f"device {device!r} is listed twice")
            seen.add(device)
        return devices

    @field_validator("effective_from")
    @classmethod
    def _month(cls, value: str) -> str:
        """The first billing period governed by this version, as "YYYY-MM"."""
        return str(Period.parse(value))

    @field_validator("excused_causes")
    @classmethod
    def _distinct_causes(cls, causes: list[DowntimeCause]) -> list[DowntimeCause]:
        """A repeated cause would excuse its minutes twice."""
        return list(dict.fromkeys(causes))

    @field_validator("value_promise")
    @classmethod
    def _measurable(cls, promise: ValuePromise | None, info: ValidationInfo) -> ValuePromise | None:
        """Customer value is computed from the value model: without one it cannot be checked."""
        named = promise is not None and CUSTOMER_VALUE in {*promise.promised, *promise.baseline}
        if named and info.data.get("value_model") is None:
            raise ValueError(f"{CUSTOMER_VALUE} needs a value_model to be measured")
        return promise

    @property
    def effective_period(self) -> Period:
        """``effective_from`` as a ``Period``."""
        return Period.parse(self.effective_from)


class ContractIn(ContractTerms):
    """A contract as posted to ``POST /v1/contracts``: terms plus the parties."""

    contract_id: Identifier
    provider: NonEmptyText
    customer: NonEmptyText

    def contract_terms(self) -> ContractTerms:
        """The versioned part, without the identity of the contract."""
        return ContractTerms.model_validate(
            self.model_dump(exclude={"contract_id", "provider", "customer"})
        )
