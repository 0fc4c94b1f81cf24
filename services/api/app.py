"""The FastAPI application: routing, auth and serialisation only."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import make_asgi_app
from sqlalchemy import Engine

from services.api import pages, problems
from services.api.middleware import BodyLimit, NoNul, RequestId, Timing
from services.api.routes import actions as actions_routes
from services.api.routes import annotations as annotations_routes
from services.api.routes import audit as audit_routes
from services.api.routes import contracts as contracts_routes
from services.api.routes import disputes as disputes_routes
from services.api.routes import outlook as outlook_routes
from services.api.routes import proposals as proposals_routes
from services.api.routes import reviews as reviews_routes
from services.api.routes import settlements as settlements_routes
from services.api.routes import telemetry as telemetry_routes
from services.api.routes import tokens as tokens_routes
from services.api.routes import users as users_routes
from services.api.routes import value as value_routes
from services.api.schemas.ops import Health, Readiness
from services.api.templating import STATIC
from services.config import Settings
from services.db import ping

ReadinessProbe = Callable[[], bool]


def create_app(
    settings: Settings, engine: Engine, *, broker_probe: ReadinessProbe | None = None
) -> FastAPI:
    """Build the app around an engine the caller owns (no import-time side effects)."""
    app = FastAPI(
        title="viu",
        version="0.1.0",
        description="Value-in-use contracts: telemetry, settlement, realignment.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.broker_probe = broker_probe
    # POST /v1/settlements/run: at most this many settle at once, the rest queue.
    app.state.settlement_slots = threading.BoundedSemaphore(settings.settlement_run_concurrency)
    problems.install(app)

    @app.get("/healthz", tags=["ops"], response_model=Health)
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        response_model=Readiness,
        responses={503: {"description": "not ready", "model": Readiness}},
    )
    def readyz() -> Any:
        """The database and the broker are reachable."""
        checks = {"database": ping(engine)}
        if broker_probe is not None:
            checks["broker"] = broker_probe()
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    for router in _routers():
        app.include_router(router, prefix="/v1", responses=problems.ERROR_RESPONSES)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/metrics", make_asgi_app())
    app.add_middleware(Timing)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(NoNul)
    app.add_middleware(RequestId)
    return app


def _routers() -> list[Any]:
    return [
        tokens_routes.router,
        users_routes.router,
        audit_routes.router,
        contracts_routes.router,
        settlements_routes.router,
        telemetry_routes.router,
        annotations_routes.router,
        proposals_routes.router,
        reviews_routes.router,
        value_routes.router,
        outlook_routes.router,
        disputes_routes.router,
        actions_routes.router,
    ]
