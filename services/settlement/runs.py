"""Settlement runs: the one path from stored data to stored statements.

The scheduler, the API and the CLI all call ``settle_contract``; it reads
rollups, calls the pure engine and stores the result under a per-(contract,
period) advisory lock, in one transaction.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import Counter, Histogram
from sqlalchemy import Connection, Engine

from schemas.periods import Period, period_bounds
from services.errors import Conflict
from services.settlement import contracts, ownership, statements
from services.settlement.engine import inputs_digest, settle
from services.settlement.proposals import service as proposals
from services.settlement.statements import Computed, Outcome
from services.settlement.usage import load_usage

SETTLE_SECONDS = Histogram("viu_settlement_seconds", "Settling one contract for one period")
SETTLE_RUNS = Counter("viu_settlement_runs_total", "Settlement runs by outcome", ["outcome"])


@dataclass(frozen=True)
class RunResult:
    contract_id: str
    period: str
    outcome: Outcome | str
    net: str | None = None
    error: str | None = None


def compute(
    conn: Connection, contract_id: str, period: Period, now: datetime | None = None
) -> Computed:
    """Settle one contract and period from the stored rollups (stores nothing)."""
    version = contracts.version_in_force(conn, contract_id, period)
    if version is None:
        raise Conflict(f"contract '{contract_id}' is not in force in {period}")
    terms = ownership.owned_terms(conn, contract_id, version.terms, period)
    until = now if now is not None and now < period_bounds(period, terms.timezone)[1] else None
    usage, watermark = load_usage(conn, terms, period, until=until)
    body = settle(terms, period, usage)
    if not_owned := [d for d in version.terms.devices if d not in terms.devices]:
        body = body.model_copy(
            update={"warnings": [*body.warnings, *_not_owned_warnings(not_owned, period)]}
        )
    return Computed(
        contract_id=contract_id,
        period=period,
        contract_version=version.version,
        body=body,
        digest=inputs_digest(terms, period, usage),
        watermark=watermark,
    )


def _not_owned_warnings(device_ids: list[str], period: Period) -> list[str]:
    return [
        f"device {d} is listed but was not this contract's in {period}: its data is not used"
        for d in device_ids
    ]


def settle_contract(conn: Connection, contract_id: str, period: Period) -> RunResult:
    statements.lock(conn, contract_id, period)
    computed = compute(conn, contract_id, period, datetime.now(UTC))
    outcome = statements.store(conn, computed)
    proposals.after_settlement(conn, contract_id, period)
    return RunResult(contract_id, str(period), outcome, net=str(computed.body.net))


def in_force(conn: Connection, period: Period, contract_id: str | None = None) -> list[str]:
    ids = [contract_id] if contract_id else contracts.contract_ids(conn)
    return [c for c in ids if contracts.version_in_force(conn, c, period) is not None]


def run_period(
    engine: Engine,
    period: Period,
    contract_ids: list[str],
    *,
    on_progress: object = None,
) -> list[RunResult]:
    """Settle each contract in its own transaction; one failure does not stop the rest."""
    results = []
    for i, cid in enumerate(contract_ids, 1):
        started = time.perf_counter()
        try:
            with engine.begin() as conn:
                results.append(settle_contract(conn, cid, period))
        except Conflict as exc:
            results.append(RunResult(cid, str(period), "skipped", error=exc.detail))
        SETTLE_SECONDS.observe(time.perf_counter() - started)
        SETTLE_RUNS.labels(results[-1].outcome).inc()
        if callable(on_progress):
            on_progress(i, len(contract_ids))
    return results


def settle_by_hand(
    engine: Engine, period_text: str, contract_id: str | None, progress: bool
) -> int:
    """``viu settle --period``: settle now, with a progress bar on stderr."""
    period = Period.parse(period_text)
    with engine.connect() as conn:
        ids = in_force(conn, period, contract_id)
    if contract_id and not ids:
        print(f"viu: contract '{contract_id}' is not in force in {period}", file=sys.stderr)
        return 1
    started = time.monotonic()
    bar = _progress_bar if progress and sys.stderr.isatty() else None
    results = run_period(engine, period, ids, on_progress=bar)
    for r in results:
        print(f"{r.contract_id}\t{r.period}\t{r.outcome}\t{r.net or r.error}")
    print(
        f"settled {len(results)} contract(s) for {period} in {time.monotonic() - started:.1f}s",
        file=sys.stderr,
    )
    return 0 if all(r.error is None for r in results) else 1


def _progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()
