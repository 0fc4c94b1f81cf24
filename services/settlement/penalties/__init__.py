"""Penalty forms, priced (spec §3.3 step 4): one module per form, found through a registry.

A form's shape lives in ``schemas/penalties.py``; its module here says what it
charges for a KPI value and how its thresholds follow a target that moves
(proposals re-baseline targets). Every module in this package that defines
``FORM`` is registered; ``form_of`` finds the one for a rule's penalty.
"""

from __future__ import annotations

import importlib
import pkgutil

from schemas.penalties import PENALTY_FORMS
from services.settlement.penalties.base import PenaltyBasis, PenaltyForm

__all__ = ["FORMS", "PenaltyBasis", "PenaltyForm", "form_of"]


def _discover() -> dict[str, PenaltyForm]:
    found: dict[str, PenaltyForm] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        form = getattr(module, "FORM", None)
        if isinstance(form, PenaltyForm):
            found[form.model.form] = form
    return {f.form: found[f.form] for f in PENALTY_FORMS if f.form in found}


FORMS = _discover()
"""Priced forms by name, in the order of ``schemas.penalties.PENALTY_FORMS``."""


def form_of(penalty: object) -> PenaltyForm:
    """The priced form of a validated penalty."""
    for form in FORMS.values():
        if isinstance(penalty, form.model):
            return form
    raise LookupError(f"no pricing module for penalty {type(penalty).__name__}")
