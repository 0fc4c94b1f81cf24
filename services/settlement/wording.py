"""How statement lines write their working: the symbols and the name of a point."""

from __future__ import annotations

from schemas.vocabulary import RATIO_KPIS, KpiName

TIMES = "\u00d7"
MINUS = "\u2212"


def points_word(kpi: KpiName, unit: str) -> str:
    """What one point of ``kpi`` is called in an explanation ("points", "t", "h")."""
    if kpi in RATIO_KPIS:
        return "points"
    return unit if kpi == "throughput" else "h"
