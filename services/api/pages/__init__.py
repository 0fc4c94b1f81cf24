"""Pages for people (spec §8), server-rendered from the same services as the API.

Addresses: ``/login``, ``/contracts``, ``/contracts/{id}``, ``/statements``,
``/contracts/{id}/statements/{period}``, ``/users`` (admin). The framework
is in ``core``.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.api.pages import auth, contracts, people, statements

router = APIRouter()
for _module in (auth, contracts, statements, people):
    router.include_router(_module.router)
