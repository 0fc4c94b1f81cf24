"""Pages for people (spec §8), server-rendered from the same services as the API.

Addresses: ``/login``, ``/contracts``, ``/contracts/{id}``, ``/statements``,
``/contracts/{id}/statements/{period}``, ``/reviews``, ``/contracts/{id}/reviews/{quarter}``,
``/contracts/{id}/proposals``, ``/contracts/{id}/governance``, ``/users`` (admin). The framework
is in ``core``.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.api.pages import (
    auth,
    contracts,
    governance,
    people,
    proposals,
    reviews,
    statements,
)

router = APIRouter()
for _module in (auth, contracts, statements, reviews, proposals, governance, people):
    router.include_router(_module.router)
