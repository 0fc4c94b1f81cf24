"""Proposal kinds are found through a registry: one module per kind, nothing listed twice."""

from __future__ import annotations

import pkgutil

from services.settlement.proposals import kinds
from services.settlement.proposals.registry import KIND_NAMES, KINDS, PROVIDER_ONLY_KINDS

SPEC_ORDER = [
    "chronic_penalty",
    "unreachable_bonus",
    "slack_target",
    "cap_binding",
    "commitment_mismatch",
    "excused_creep",
    "data_gaps",
    "unfair_split",
]


def test_every_module_of_the_kinds_package_is_a_registered_kind() -> None:
    modules = {info.name for info in pkgutil.iter_modules(kinds.__path__)}
    assert modules == set(KIND_NAMES)
    for name, kind in KINDS.items():
        assert kind.name == name


def test_kinds_come_in_the_specs_order() -> None:
    listed = [k for k in KIND_NAMES if k in SPEC_ORDER]
    assert listed == SPEC_ORDER


def test_only_the_value_split_is_provider_side() -> None:
    assert {"unfair_split"} == PROVIDER_ONLY_KINDS
