"""The body of a decision (spec §7.1): for which party (admins say so) and why.

A rejection needs a reason; without one the 422 says so and names ``reason``,
instead of a bare "body: Field required".
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from schemas.vocabulary import Party
from services.errors import Invalid

Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


class DecisionIn(BaseModel):
    """``party``: only for an admin acting for a party; ``reason``: required to reject."""

    model_config = ConfigDict(extra="forbid")
    party: Party | None = None
    reason: Reason | None = None


def reason_of(body: DecisionIn | None, *, required: bool, what: str = "a rejection") -> str | None:
    reason = body.reason if body is not None else None
    if required and not reason:
        raise Invalid(
            f'{what} needs a reason: send {{"reason": "..."}} (1 to 2000 characters)',
            field="reason",
            errors=[{"field": "reason", "message": f"{what} needs a reason"}],
        )
    return reason or None
