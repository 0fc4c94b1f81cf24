"""viu's vocabulary: every name the spec fixes, defined once and imported everywhere.

Downtime causes, KPIs (with their kind and the size of one point), statement
line kinds and proposal kinds are used by the schemas, the engine, the
database schema, the charts and the CSV export. Adding a member here is the
first step of adding it anywhere; what else must change is said beside each.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, get_args

DowntimeCause = Literal["unplanned", "planned", "customer", "external"]
"""Why an interval's non-running minutes happened (spec §1.2). A new cause also
needs a ``down_<cause>`` column in ``rollups`` and ``rollup_deltas`` and in the
view ``rollup_totals`` (a migration)."""
DOWNTIME_CAUSES: tuple[DowntimeCause, ...] = get_args(DowntimeCause)
DEFAULT_CAUSE: DowntimeCause = "unplanned"
DEFAULT_EXCUSED_CAUSES: tuple[DowntimeCause, ...] = ("planned", "customer", "external")
MISSING = "missing"
"""Unreported minutes, shown next to the causes (they are not a cause a device reports)."""

MissingDataPolicy = Literal["downtime", "excused", "uptime"]
MISSING_DATA_POLICIES: tuple[MissingDataPolicy, ...] = get_args(MissingDataPolicy)

KpiName = Literal[
    "availability",
    "quality_rate",
    "performance",
    "utilisation",
    "oee",
    "throughput",
    "utilised_capacity_hours",
    "uptime_hours",
]
KpiKind = Literal["ratio", "unit"]


@dataclass(frozen=True)
class Kpi:
    """A KPI of spec §3.2: how its points are counted and how people read it."""

    name: KpiName
    kind: KpiKind
    label: str

    @property
    def point(self) -> Decimal:
        """One point: 0.01 for ratio KPIs, one unit for the others (§3.3 step 4)."""
        return RATIO_POINT if self.kind == "ratio" else UNIT_POINT


RATIO_POINT = Decimal("0.01")
UNIT_POINT = Decimal(1)

KPIS: dict[KpiName, Kpi] = {
    k.name: k
    for k in (
        Kpi("availability", "ratio", "availability"),
        Kpi("quality_rate", "ratio", "quality rate"),
        Kpi("performance", "ratio", "performance"),
        Kpi("utilisation", "ratio", "utilisation"),
        Kpi("oee", "ratio", "OEE"),
        Kpi("throughput", "unit", "throughput"),
        Kpi("utilised_capacity_hours", "unit", "utilised capacity hours"),
        Kpi("uptime_hours", "unit", "uptime hours"),
    )
}
"""In the spec's order, which is the order of every KPI listing."""
KPI_NAMES: tuple[KpiName, ...] = tuple(KPIS)
RATIO_KPIS: frozenset[KpiName] = frozenset(k.name for k in KPIS.values() if k.kind == "ratio")


def point_of(kpi: KpiName) -> Decimal:
    """The size of one point of ``kpi``."""
    return KPIS[kpi].point


UsageBasis = Literal["throughput", "utilised_capacity_hours", "uptime_hours"]

LineKind = Literal[
    "fixed_fee", "usage", "penalty", "bonus", "penalty_cap", "bonus_cap", "gain_share"
]
"""The kinds of statement line (spec §6), in the order a statement lists them."""
LINE_KINDS: tuple[LineKind, ...] = get_args(LineKind)
LINE_LABELS: dict[LineKind, str] = {
    "fixed_fee": "fixed fee",
    "usage": "usage",
    "penalty": "penalties",
    "bonus": "bonuses",
    "penalty_cap": "penalty cap",
    "bonus_cap": "bonus cap",
    "gain_share": "gain share",
}
"""How a page or chart names the lines of one kind."""

ProposalStatus = Literal["open", "accepted", "rejected", "superseded"]
"""A proposal's kinds are not listed here: each is one module found by the registry in
``services/settlement/proposals/kinds/``."""
PROPOSAL_STATUSES: tuple[ProposalStatus, ...] = get_args(ProposalStatus)

Party = Literal["provider", "customer"]
PARTIES: tuple[Party, ...] = get_args(Party)

Remedy = Literal["change_terms", "corrective_action"]
"""What a proposal asks for (spec §4): new terms, or work for one party (§7.4)."""
REMEDIES: tuple[Remedy, ...] = get_args(Remedy)

Visibility = Literal["joint", "provider"]
"""Who sees a proposal kind: both parties, or only the provider side (its evidence
would reveal the provider's cost to serve)."""

ProposalDecision = Literal["accepted", "rejected"]
AnnotationDecision = Literal["approved", "rejected"]
DisputeOutcome = Literal["upheld", "dismissed"]
Decision = Literal["accepted", "rejected", "approved", "raised", "upheld", "dismissed"]
"""One party's decision on a proposal, an annotation or a dispute (spec §7.1)."""
DECISIONS: tuple[Decision, ...] = get_args(Decision)

AnnotationStatus = Literal["pending", "approved", "rejected"]
ANNOTATION_STATUSES: tuple[AnnotationStatus, ...] = get_args(AnnotationStatus)
AnnotationApproval = Literal["counterparty", "none"]
"""Whether one party's annotation waits for the other party (spec §1.3)."""

DisputeStatus = Literal["open", "upheld", "dismissed"]
DISPUTE_STATUSES: tuple[DisputeStatus, ...] = get_args(DisputeStatus)

ActionStatus = Literal["open", "done", "dropped"]
ACTION_STATUSES: tuple[ActionStatus, ...] = get_args(ActionStatus)

CUSTOMER_VALUE = "customer_value"
"""The money figure of a value promise (§7.3), next to the KPIs it may promise."""
