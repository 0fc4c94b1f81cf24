"""The proposal kinds, found once: every module of ``kinds/`` that defines ``KIND``.

Polar's benefit registry maps a type to its strategy; here the map is built
from the package itself, so adding a kind is one module (plus its test) and
nothing else: the kind's name is accepted by the store (no CHECK lists it),
the API and the review list it, and detection runs it.
"""

from __future__ import annotations

import importlib
import pkgutil

from schemas.contract import ContractTerms
from schemas.vocabulary import PARTIES, Party
from services.settlement.proposals import kinds as package
from services.settlement.proposals.base import Facts, Finding, Kind, Proposal


def _discover() -> dict[str, Kind]:
    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if isinstance(kind, Kind):
            found.append(kind)
    return {k.name: k for k in sorted(found, key=lambda k: (k.order, k.name))}


KINDS: dict[str, Kind] = _discover()
"""Every kind by name, in the spec's order."""
KIND_NAMES: tuple[str, ...] = tuple(KINDS)
PROVIDER_ONLY_KINDS: frozenset[str] = frozenset(
    k.name for k in KINDS.values() if k.visibility == "provider"
)


def detect_all(facts: Facts) -> list[Finding]:
    """Every finding over one contract's history, in the spec's order of kinds."""
    return [f for kind in KINDS.values() for f in kind.detect(facts)]


def propose(finding: Finding, terms: ContractTerms) -> Proposal | None:
    """The proposal for ``finding``; ``None`` when no better term follows from the evidence."""
    return KINDS[finding.kind].propose(finding, terms)


def judged(kind: str, subject: str, facts: Facts) -> bool:
    """Whether a kind's detector saw a full window on ``subject``: only then may its
    silence close an open proposal."""
    found = KINDS.get(kind)
    if found is None:
        return False
    run = facts.run(lambda terms: found.key(terms, subject))
    return len(run) >= found.window(facts.cfg)


def deciding_parties(kind: str) -> tuple[Party, ...]:
    """Who must accept a proposal of ``kind``: both parties, or for a provider-side kind
    (which the customer may not see) the provider alone."""
    found = KINDS.get(kind)
    return ("provider",) if found is not None and found.visibility == "provider" else PARTIES
