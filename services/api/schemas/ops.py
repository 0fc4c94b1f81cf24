"""Responses of the probes in ``app.py``."""

from __future__ import annotations

from typing import Literal

from services.api.schemas.base import Out


class Health(Out):
    status: Literal["ok"]


class Readiness(Out):
    """``checks``: each dependency (``database``, ``broker``) and whether it answered."""

    ready: bool
    checks: dict[str, bool]
