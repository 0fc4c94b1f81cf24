"""What every proposal kind works with: the facts it judges, what it finds, what it proposes.

A kind (one module under ``kinds/``) is a detector, a proposer and a few
declarations: how many periods its detector needs, which terms its evidence
must have been gathered under, and who may see it. ``registry`` finds them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from schemas.contract import ContractTerms
from schemas.periods import Period
from schemas.vocabulary import Party, Remedy, Visibility
from services.settlement.connectivity import MissingSplit
from services.settlement.proposals.history import SettledPeriod
from services.settlement.proposals.settings import DetectorSettings
from services.settlement.value import ValueSplit

TermsKey = Callable[[ContractTerms], Any]
"""The part of a version a piece of evidence depends on; equal keys: comparable evidence."""


@dataclass(frozen=True)
class Facts:
    """A contract's recent history as the detectors see it.

    ``history`` is the latest run of consecutive closed periods, oldest first,
    whatever version settled them; ``window`` keeps only the trailing periods
    settled under terms that agree with the latest ones on what a detector
    judges, so that new terms get a full window before they are judged while
    an unrelated change (a new fee) does not blind a detector to its evidence.
    """

    history: Sequence[SettledPeriod]
    terms: ContractTerms
    cfg: DetectorSettings
    splits: Sequence[ValueSplit] = ()
    versions: Mapping[int, ContractTerms] = field(default_factory=dict)
    # (period, device_id) → its missing minutes split by connection state (offline/silent/unknown)
    missing: Mapping[tuple[str, str], MissingSplit] = field(default_factory=dict)

    def terms_of(self, item: SettledPeriod) -> ContractTerms:
        """The terms ``item`` was settled under."""
        return self.versions.get(item.contract_version, self.terms)

    def run(self, key: TermsKey) -> list[SettledPeriod]:
        """The trailing periods whose terms agree with the latest ones on ``key``."""
        wanted = key(self.terms)
        run: list[SettledPeriod] = []
        for item in reversed(self.history):
            if key(self.terms_of(item)) != wanted:
                break
            run.append(item)
        return list(reversed(run))

    def window(self, n: int, key: TermsKey) -> list[SettledPeriod] | None:
        """The last ``n`` periods of ``run(key)``, or ``None`` while it is shorter."""
        run = self.run(key)
        return run[-n:] if len(run) >= n else None

    def split_of(self, item: SettledPeriod) -> ValueSplit | None:
        return next((s for s in self.splits if s.period == str(item.period)), None)


@dataclass(frozen=True)
class Finding:
    """A detector that fired: on what, over which periods, with which per-period values."""

    kind: str
    subject: str
    term: str
    periods: tuple[Period, ...]
    evidence: list[dict[str, Any]]
    kpi: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def window(self) -> tuple[Period, Period]:
        return self.periods[0], self.periods[-1]


@dataclass(frozen=True)
class ActionSpec:
    """The work a ``corrective_action`` proposal asks of one party (spec §7.4)."""

    title: str
    owner: Party
    kpi: str | None = None
    devices: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "owner": self.owner,
            "kpi": self.kpi,
            "devices": list(self.devices),
        }


@dataclass(frozen=True)
class Proposal:
    """A finding with its remedy, in terms both parties can check.

    ``change_terms``: ``proposed`` is the new term and ``proposed_terms`` the
    terms with it (``None``: acknowledged, no term change). ``corrective_action``:
    ``action`` is the work asked, ``proposed`` its JSON, and ``at_stake`` the
    money per period the drift cost (``stake_means`` says what that money is).
    ``change`` says in words what accepting
    changes; ``unchanged_because`` why the window's money would not move.
    """

    finding: Finding
    current: Any
    proposed: Any
    proposed_terms: ContractTerms | None
    rationale: str
    remedy: Remedy = "change_terms"
    change: str = ""
    unchanged_because: str | None = None
    action: ActionSpec | None = None
    at_stake: tuple[tuple[Period, Decimal], ...] = ()
    stake_means: str = "charged under the current terms every period until the action works"


def corrective(
    finding: Finding,
    current: Any,
    action: ActionSpec,
    rationale: str,
    at_stake: Sequence[tuple[Period, Decimal]] = (),
    stake_means: str | None = None,
) -> Proposal:
    """A proposal whose remedy is work for one party, not new terms."""
    return Proposal(
        finding,
        current,
        action.as_json(),
        None,
        rationale,
        remedy="corrective_action",
        change=f"{action.owner} action: {action.title}",
        action=action,
        at_stake=tuple(at_stake),
        **({"stake_means": stake_means} if stake_means else {}),
    )


@dataclass(frozen=True)
class Kind:
    """One proposal kind of spec §4.

    ``window(cfg)``: how many periods the detector must see before its silence
    may close an open proposal. ``key(terms, subject)``: what the evidence on
    ``subject`` depends on (see ``Facts.window``). ``order``: where its
    proposals come in listings (the spec's order of kinds).
    """

    name: str
    order: int
    detect: Callable[[Facts], list[Finding]]
    propose: Callable[[Finding, ContractTerms], Proposal | None]
    window: Callable[[DetectorSettings], int]
    key: Callable[[ContractTerms, str], Any]
    visibility: Visibility = "joint"
