"""``viu demo``: a populated product in one command.

Three contracts with different term styles get months of simulated history
in which their incentives drift the way the research describes (a guarantee
penalised every month, a bonus nobody reaches, a commitment sized on the
wrong baseline, excused downtime creeping up, a device with data gaps). Each
month is settled through the real settlement path, the older statements are
issued as finance would, and the detectors turn the drift into proposals.

The crusher contract tells the joint-governance story end to end: it was
sold on a promise (availability from 90 % to 95 %) it then misses because
one crusher wears; the detectors see that the other crusher meets the target
and propose a corrective action for the provider rather than a lower target;
both parties accept it in a review meeting, the provider relines the crusher,
and the next review shows the crusher's availability before and after.

Everything is idempotent: a second run reuses the contracts, writes only the
device-months that are missing, re-settles (unchanged) and reuses the token.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from schemas.contract import ContractIn
from schemas.db import contracts as contracts_table
from schemas.db import samples
from schemas.periods import Period, period_bounds, period_of
from schemas.vocabulary import PARTIES
from services import audit, demo_people
from services.api.tokens import authenticate, create_token
from services.config import Settings
from services.settlement import actions, contracts, runs, statements
from services.settlement.costs import CostIn, add_cost, list_costs
from services.settlement.proposals import decide
from services.settlement.proposals import repository as proposals_repo
from services.settlement.proposals import service as proposals
from services.simulator import (
    DeviceProfile,
    SimDevice,
    SimSample,
    backfill,
    generate,
    progress_bar,
)

Say = Callable[[str], None]
ACTOR = "viu demo"
SEED = "viu-demo"
BASE_INTERVAL_S = 900
TOKEN_FILE = "demo-token"


@dataclass(frozen=True)
class Meeting:
    """A review meeting in the history: after ``after`` is settled both parties accept the
    open corrective actions on ``at``; the owner reports them done on ``done``."""

    after: Period
    at: datetime
    done: datetime


@dataclass(frozen=True)
class DemoContract:
    """A contract, its machines' behaviour over time, and the drift it is meant to show."""

    body: ContractIn
    devices: tuple[SimDevice, ...]
    story: str
    expected: tuple[str, ...]
    monthly_cost: Decimal | None = None
    meeting: Meeting | None = None
    accepted: tuple[str, ...] = ()

    @property
    def contract_id(self) -> str:
        return self.body.contract_id


@dataclass
class DemoResult:
    """What the run produced, for the summary and for tests."""

    contract_ids: list[str]
    periods: list[Period]
    token: str
    urls: dict[str, list[str]] = field(default_factory=dict)
    proposals: dict[str, list[str]] = field(default_factory=dict)
    actions: dict[str, list[str]] = field(default_factory=dict)


# ---------------------------------------------------------------- the scenario


def _shift(period: Period, months: int) -> Period:
    for _ in range(abs(months)):
        period = period.next() if months > 0 else period.prev()
    return period


def _from(first: Period, months: int) -> date:
    """The first day of the period ``months`` after ``first`` (a profile change date)."""
    return _shift(first, months).first_day


CRUSHER = DeviceProfile(
    timezone="Europe/Stockholm",
    rated_capacity_per_hour=250,
    performance=0.9,
    shift_hours=(6, 22),
    off_shift="idle",
    idle_load=0.75,
    breakdowns_per_week=8.0,
    breakdown_hours=1.2,
    maintenance_every_weeks=4,
    maintenance_hours=8,
    customer_stops_per_week=0.5,
    customer_stop_hours=1.5,
    quality=0.99,
    quality_dip_chance=0.03,
    quality_dip=0.93,
)

COMPRESSOR = DeviceProfile(
    timezone="Europe/Berlin",
    rated_capacity_per_hour=1200,
    performance=0.85,
    shift_hours=(6, 22),
    off_shift="idle",
    idle_load=0.55,
    breakdowns_per_week=0.6,
    breakdown_hours=2.0,
    maintenance_every_weeks=4,
    maintenance_hours=6,
    customer_stops_per_week=0.4,
    customer_stop_hours=2.0,
    quality=0.998,
    quality_dip_chance=0.0,
)

PACKING_LINE = DeviceProfile(
    timezone="Europe/Stockholm",
    rated_capacity_per_hour=6000,
    performance=0.88,
    shift_hours=(6, 22),
    off_shift="stop",
    breakdowns_per_week=1.0,
    breakdown_hours=1.5,
    maintenance_every_weeks=2,
    maintenance_hours=4,
    customer_stops_per_week=0.5,
    customer_stop_hours=1.0,
    quality=0.99,
    quality_dip_chance=0.04,
    quality_dip=0.96,
)


WEAR_FROM = 1
"""The month (from the first) crusher-02 starts wearing."""
REVIEW_AFTER = 3
"""The month after which the parties meet: three months of penalties are on the table."""
MEETING_DAY, FIXED_DAY = 2, 6


def _meeting(first: Period, months: int) -> Meeting | None:
    """The review held early in the month after ``REVIEW_AFTER``, if the history reaches it."""
    if months <= REVIEW_AFTER + 1:
        return None
    month = _shift(first, REVIEW_AFTER + 1).first_day
    return Meeting(
        _shift(first, REVIEW_AFTER),
        datetime(month.year, month.month, MEETING_DAY, 9, tzinfo=UTC),
        datetime(month.year, month.month, FIXED_DAY, 15, tzinfo=UTC),
    )


def _crushers(first: Period, meeting: Meeting | None) -> tuple[SimDevice, ...]:
    """crusher-01 is well maintained and meets the target; crusher-02 wears from the second
    month (long breakdowns, its gateway dropping data) until the agreed action relines it."""
    sound = replace(CRUSHER, breakdowns_per_week=6.0, breakdown_hours=1.0)
    worn = replace(CRUSHER, breakdowns_per_week=12.0, breakdown_hours=2.5)
    flaky = replace(worn, gaps_per_month=6.0, gap_hours=10.0)
    changes: list[tuple[date, DeviceProfile]] = [(_from(first, WEAR_FROM), flaky)]
    if meeting is not None:
        changes.append((meeting.done.date(), CRUSHER))
    return (
        SimDevice("demo-crusher-01", sound),
        SimDevice("demo-crusher-02", CRUSHER, tuple(changes)),
    )


def _compressors(first: Period, late: int) -> tuple[SimDevice, ...]:
    """The customer stops the compressors more and more often (excused, but creeping)."""
    changes = tuple(
        (_from(first, late + i), replace(COMPRESSOR, customer_stops_per_week=4.0 + 2 * i))
        for i in range(3)
    )
    return tuple(SimDevice(f"demo-compressor-0{n}", COMPRESSOR, changes) for n in (1, 2, 3))


def crush_contract(first: Period, months: int) -> DemoContract:
    meeting = _meeting(first, months)
    body = ContractIn.model_validate(
        {
            "contract_id": "DEMO-CRUSH-01",
            "provider": "Connectcorp",
            "customer": "MineCo",
            "currency": "EUR",
            "timezone": "Europe/Stockholm",
            "devices": ["demo-crusher-01", "demo-crusher-02"],
            "effective_from": str(first),
            "unit": "t",
            "rated_capacity_per_hour": 250,
            "missing_data": "downtime",
            "excused_causes": ["planned", "customer", "external"],
            "terms": {
                "fixed_fee": "12000.00",
                "usage": {
                    "basis": "throughput",
                    "mode": "graduated",
                    "minimum_commitment": 240000,
                    "tiers": [
                        {"up_to": 280000, "price": "0.80"},
                        {"up_to": None, "price": "0.65"},
                    ],
                },
                "kpis": [
                    {
                        "kpi": "availability",
                        "target": 0.95,
                        "deadband": 0.005,
                        "penalty": {"per_point": "800.00"},
                        "bonus": {"above": 0.97, "per_point": "400.00"},
                    },
                    {
                        "kpi": "quality_rate",
                        "target": 0.98,
                        "penalty": {
                            "credits": [{"below": 0.98, "pct": 0.02}, {"below": 0.95, "pct": 0.05}]
                        },
                    },
                ],
                "penalty_cap_pct": 0.20,
                "bonus_cap_pct": 0.10,
            },
            "value_promise": {
                "baseline": {"availability": 0.90},
                "promised": {"availability": 0.95},
                "tolerance": 0.01,
            },
        }
    )
    return DemoContract(
        body,
        _crushers(first, meeting),
        "pay-per-ton with an availability guarantee, sold on a promise (availability 90 % → "
        "95 %): crusher-02 wears and misses it while crusher-01 meets it, so the remedy is a "
        "corrective action, not a lower target; the bonus is out of reach, crusher-02 loses data",
        ("unreachable_bonus", "data_gaps"),
        meeting=meeting,
        accepted=("chronic_penalty",) if meeting else (),
    )


def air_contract(first: Period, late: int) -> DemoContract:
    body = ContractIn.model_validate(
        {
            "contract_id": "DEMO-AIR-01",
            "provider": "AirFlow Services",
            "customer": "PackWorks",
            "currency": "EUR",
            "timezone": "Europe/Berlin",
            "devices": ["demo-compressor-01", "demo-compressor-02", "demo-compressor-03"],
            "effective_from": str(first),
            "unit": "Nm3",
            "rated_capacity_per_hour": 1200,
            "missing_data": "downtime",
            "excused_causes": ["planned", "customer", "external"],
            "terms": {
                "fixed_fee": "2500.00",
                "usage": {
                    "basis": "uptime_hours",
                    "mode": "volume",
                    "minimum_commitment": 1800,
                    "tiers": [
                        {"up_to": 2000, "price": "9.50"},
                        {"up_to": None, "price": "8.75"},
                    ],
                },
                "kpis": [
                    {
                        "kpi": "availability",
                        "target": 0.98,
                        "penalty": {
                            "credits": [{"below": 0.98, "pct": 0.03}, {"below": 0.95, "pct": 0.08}]
                        },
                    }
                ],
                "penalty_cap_pct": 0.15,
            },
        }
    )
    return DemoContract(
        body,
        _compressors(first, late),
        "power-by-the-hour with SLA credits: customer-caused stops are excused, "
        "and they keep growing",
        ("excused_creep",),
    )


def pack_contract(first: Period) -> DemoContract:
    body = ContractIn.model_validate(
        {
            "contract_id": "DEMO-PACK-01",
            "provider": "Connectcorp",
            "customer": "BevCo",
            "currency": "EUR",
            "timezone": "Europe/Stockholm",
            "devices": ["demo-line-01"],
            "effective_from": str(first),
            "unit": "packs",
            "rated_capacity_per_hour": 6000,
            "missing_data": "downtime",
            "excused_causes": ["planned", "customer", "external"],
            "terms": {
                "fixed_fee": "8000.00",
                "usage": {
                    "basis": "throughput",
                    "mode": "graduated",
                    "minimum_commitment": 600000,
                    "tiers": [{"up_to": None, "price": "0.010"}],
                },
                "kpis": [
                    {"kpi": "quality_rate", "target": 0.95, "penalty": {"per_point": "300.00"}}
                ],
                "gain_share": {
                    "kpi": "throughput",
                    "baseline": 1500000,
                    "value_per_unit": "0.02",
                    "provider_share": 0.5,
                    "symmetric": False,
                },
            },
            "value_model": {
                "customer_value_per_unit": "0.05",
                "agreed_provider_share": 0.4,
                "tolerance": 0.1,
            },
        }
    )
    return DemoContract(
        body,
        (SimDevice("demo-line-01", PACKING_LINE),),
        "gain-sharing on a two-shift packing line: the commitment was set on the wrong "
        "baseline, the quality target is slack, the provider earns less than its agreed share",
        ("commitment_mismatch", "slack_target", "unfair_split"),
        monthly_cost=Decimal("9000.00"),
    )


def scenario(first: Period, months: int) -> list[DemoContract]:
    """The demo's contracts for ``months`` periods from ``first``; drift starts half-way."""
    late = max(months // 2, 1)
    return [crush_contract(first, months), air_contract(first, late), pack_contract(first)]


# ---------------------------------------------------------------- steps


def interval_for_scale(scale: float) -> int:
    """``scale`` 1.0 is one sample per 15 minutes; 0.25 one per hour (faster, same story)."""
    if not scale > 0:
        raise ValueError("scale must be above 0")
    return max(60, min(86_400, round(BASE_INTERVAL_S / scale)))


def ensure_contract(conn: Connection, demo: DemoContract, say: Say) -> Period:
    """Create the contract unless it exists; returns its first period (reused as it is)."""
    cid = demo.contract_id
    exists = conn.execute(
        select(contracts_table.c.contract_id).where(contracts_table.c.contract_id == cid)
    ).first()
    if exists is None:
        contracts.create_contract(conn, demo.body, ACTOR)
        audit.record(
            conn,
            actor=ACTOR,
            action="contract.create",
            object_type="contract",
            object_id=cid,
            source="cli:viu demo",
            details={"version": 1, "devices": demo.body.devices},
        )
        say(f"created {cid}: {demo.story}")
        return demo.body.effective_period
    first = contracts.list_versions(conn, cid)[0].terms.effective_period
    say(f"reusing {cid} (exists since {first})")
    return first


def _month_span(device: SimDevice, period: Period) -> tuple[datetime, datetime]:
    return period_bounds(period, device.timezone)


def _stored(conn: Connection, device_id: str, span: tuple[datetime, datetime]) -> int:
    query = select(func.count()).where(
        samples.c.device_id == device_id, samples.c.ts >= span[0], samples.c.ts < span[1]
    )
    return int(conn.execute(query).scalar_one())


def missing_months(
    engine: Engine, plan: Sequence[DemoContract], periods: Sequence[Period], interval_s: int
) -> list[tuple[SimDevice, Period, int]]:
    """Device-months with fewer stored samples than the scenario generates (to be written)."""
    todo = []
    with engine.connect() as conn:
        for device in (d for c in plan for d in c.devices):
            for period in periods:
                span = _month_span(device, period)
                wanted = sum(1 for _ in generate(device, *span, seed=SEED, interval_s=interval_s))
                if _stored(conn, device.device_id, span) < wanted:
                    todo.append((device, period, wanted))
    return todo


def write_history(
    engine: Engine,
    plan: Sequence[DemoContract],
    periods: Sequence[Period],
    interval_s: int,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Backfill the missing device-months through the ingest path; returns samples written."""
    todo = missing_months(engine, plan, periods, interval_s)
    total = sum(n for *_, n in todo)
    if not todo:
        return 0

    def stream() -> Iterator[SimSample]:
        for device, period, _ in todo:
            yield from generate(
                device, *_month_span(device, period), seed=SEED, interval_s=interval_s
            )

    def on_batch(_: SimSample, count: int) -> None:
        if progress is not None:
            progress(count, total)

    outcome = backfill(engine, stream(), on_batch=on_batch)
    return outcome.received


def record_costs(engine: Engine, plan: Sequence[DemoContract], periods: Sequence[Period]) -> None:
    """The provider's cost to serve, once per month (the value split needs it)."""
    with engine.begin() as conn:
        for demo in plan:
            if demo.monthly_cost is None:
                continue
            for period in periods:
                if list_costs(conn, demo.contract_id, period, period):
                    continue
                entry = CostIn(
                    period=str(period),
                    amount=demo.monthly_cost,
                    category="service",
                    note="demo: technicians, spare parts, remote monitoring",
                )
                add_cost(conn, demo.contract_id, entry, ACTOR)


def settle_months(
    engine: Engine, plan: Sequence[DemoContract], periods: Sequence[Period], say: Say
) -> None:
    """Settle oldest first through the real runs (which also run the detectors); hold each
    review meeting once the month it follows is settled."""
    ids = [c.contract_id for c in plan]
    for period in periods:
        with engine.connect() as conn:
            in_force = runs.in_force(conn, period)
        results = runs.run_period(engine, period, [c for c in ids if c in in_force])
        line = ", ".join(f"{r.contract_id} {r.outcome} net {r.net}" for r in results)
        say(f"settled {period}: {line or 'no demo contract in force'}")
        for demo in plan:
            if demo.meeting is not None and demo.meeting.after == period:
                hold_review(engine, demo.contract_id, demo.meeting, say)


def hold_review(engine: Engine, cid: str, meeting: Meeting, say: Say) -> None:
    """Both parties accept the open corrective actions; the provider does the work.

    Decided as the meeting did, on its date, so that the next review measures the
    action's effect on the months before and after it (idempotent: a second run finds
    nothing open)."""
    with engine.begin() as conn:
        rows = [r for r in proposals_repo.open_for(conn, cid) if r.remedy == "corrective_action"]
        if not rows:
            return
        ids = [r.id for r in rows]
        for party in PARTIES:
            who = decide.Decider(party, f"{ACTOR} ({party}, review of {meeting.after.quarter})")
            decided = decide.accept(conn, cid, ids, who, meeting.at)
        work = sorted({r.action_id for r in decided if r.action_id is not None})
        for action_id in work:
            actions.close(
                conn,
                action_id,
                "done",
                "provider",
                f"{ACTOR} (provider)",
                "relined and re-aligned in the planned stop",
                meeting.done,
            )
        audit.record(
            conn,
            actor=ACTOR,
            action="proposal.accept",
            object_type="contract",
            object_id=cid,
            source="cli:viu demo",
            details={"proposals": ids, "actions": work, "at": meeting.at.isoformat()},
        )
    kinds = ", ".join(sorted({r.kind for r in rows}))
    say(
        f"review meeting {meeting.at.date()}: both parties accepted {kinds} as action(s) "
        f"{', '.join(map(str, work))}, done {meeting.done.date()}"
    )


def issue_months(engine: Engine, ids: list[str], periods: Sequence[Period]) -> int:
    """Issue each pending original statement, as finance does once a month is agreed."""
    issued = 0
    for cid, period in itertools.product(ids, periods):
        with engine.begin() as conn:
            rows = statements.rows_for(conn, cid, period)
            if len(rows) != 1 or rows[0].status != "draft":
                continue
            statements.issue(conn, cid, period, f"{ACTOR} (finance)")
            audit.record(
                conn,
                actor=ACTOR,
                action="statement.issue",
                object_type="statement",
                object_id=f"{cid}/{period}",
                source="cli:viu demo",
            )
            issued += 1
    return issued


def detect(engine: Engine, ids: list[str]) -> dict[str, list[str]]:
    """Run the detectors once more (idempotent) and list the open proposals' kinds."""
    found: dict[str, list[str]] = {}
    for cid in ids:
        with engine.begin() as conn:
            proposals.detect(conn, cid)
            rows = proposals_repo.open_for(conn, cid)
            found[cid] = sorted(f"{r.kind}:{r.subject}" for r in rows)
    return found


def action_lines(engine: Engine, ids: list[str]) -> dict[str, list[str]]:
    """Each contract's corrective actions in words, with their measured effect."""
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for cid in ids:
            lines = []
            for row in actions.listing(conn, cid):
                effect = actions.effect(conn, row)
                measured = ""
                if effect and effect["after"]["value"] is not None:
                    measured = (
                        f": {effect['kpi']} {effect['before']['value']} before → "
                        f"{effect['after']['value']} after"
                    )
                lines.append(f"{row.title} ({row.owner}, {row.status}){measured}")
            out[cid] = lines
    return out


def demo_token(engine: Engine, settings: Settings) -> tuple[str, str]:
    """An admin token to explore with: the bootstrap one, the saved demo one, or a new one.

    Only hashes are stored in the database, so the demo keeps its plain token in
    ``$VIU_DATA_DIR/demo-token`` (mode 0600) to hand out the same one next time.
    """
    if settings.bootstrap_secret:
        return settings.bootstrap_secret, "your VIU_BOOTSTRAP_TOKEN"
    path = Path(settings.data_dir) / TOKEN_FILE
    with engine.begin() as conn:
        if path.exists():
            plain = path.read_text().strip()
            who = authenticate(conn, plain)
            if who is not None and who.role == "admin":
                return plain, f"reused from {path}"
        _, plain = create_token(conn, "admin", label="viu demo")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(plain + "\n")
    return plain, f"created, saved in {path}"


def base_url(settings: Settings) -> str:
    host = settings.api_host if settings.api_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{settings.api_port}"


def urls(base: str, cid: str, periods: Sequence[Period]) -> list[str]:
    """Where to look: every statement, the proposals, and each quarter's review page."""
    api = f"{base}/v1/contracts/{cid}"
    quarters = sorted({p.quarter for p in periods})
    return [
        *(f"{api}/statements/{p}" for p in periods),
        f"{api}/statements/{periods[-1]}?format=html",
        f"{api}/proposals",
        f"{api}/actions",
        f"{api}/value",
        *(f"{api}/reviews/{q}?format=html" for q in quarters),
        f"{api}/outlook",
    ]


# ---------------------------------------------------------------- the command


def _periods(end_period: str | None, months: int) -> list[Period]:
    if months < 1:
        raise ValueError("months must be at least 1")
    current = period_of(datetime.now(UTC), "UTC")
    end = Period.parse(end_period) if end_period else current.prev()
    if end >= current:
        raise ValueError(f"--end must be a closed month, before {current}: detectors judge those")
    return [_shift(end, -i) for i in reversed(range(months))]


def _bar() -> Callable[[int, int], None] | None:
    """A progress bar on stderr when someone is watching it."""
    if not sys.stderr.isatty():
        return None
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        progress_bar(done / max(total, 1), done, started=started, done=done >= total)

    return show


def run_demo(
    engine: Engine,
    settings: Settings,
    *,
    months: int = 6,
    end_period: str | None = None,
    scale: float = 1.0,
    say: Say = print,
    progress: Callable[[int, int], None] | None = None,
) -> DemoResult:
    """Create, backfill, settle, issue, detect; print the token and where to look."""
    periods = _periods(end_period, months)
    plan = scenario(periods[0], months)
    ids = [c.contract_id for c in plan]
    with engine.begin() as conn:
        starts = {c.contract_id: ensure_contract(conn, c, say) for c in plan}
    covered = [p for p in periods if p >= min(starts.values())]
    if not covered:
        raise ValueError(
            f"the demo contracts start in {min(starts.values())}: choose a later --end"
        )
    interval_s = interval_for_scale(scale)
    say(f"writing history {covered[0]}..{covered[-1]}, one sample per {interval_s} s per device")
    written = write_history(engine, plan, covered, interval_s, progress or _bar())
    say(f"wrote {written:,} samples" if written else "history already complete")
    record_costs(engine, plan, covered)
    settle_months(engine, plan, covered, say)
    issued = issue_months(engine, ids, covered[:-1])
    done = f"issued {issued} statement(s)" if issued else "earlier months were issued already"
    say(f"{done}; {covered[-1]} stays a draft for review")
    result = DemoResult(ids, covered, "", proposals=detect(engine, ids))
    result.actions = action_lines(engine, ids)
    result.token, how = demo_token(engine, settings)
    base = base_url(settings)
    result.urls = {cid: urls(base, cid, covered) for cid in ids}
    _summary(result, how, base, plan, say)
    people, where = demo_people.ensure_people(engine, settings)
    for line in demo_people.summary(base, ids[0], covered, people, where):
        say(line)
    return result


def _summary(result: DemoResult, how: str, base: str, plan: list[DemoContract], say: Say) -> None:
    say("")
    for demo in plan:
        cid = demo.contract_id
        say(f"{cid} — {demo.story}")
        say(f"  open proposals: {', '.join(result.proposals.get(cid, [])) or 'none'}")
        for line in result.actions.get(cid, []):
            say(f"  action: {line}")
        for url in result.urls[cid]:
            say(f"  {url}")
    say("")
    say(f"admin token ({how}):")
    say(f"  export TOKEN={result.token}")
    say(
        f'  curl -H "Authorization: Bearer $TOKEN" {base}/v1/contracts/{plan[0].contract_id}/proposals'
    )
    say("(the API must be running: `viu up` or `make run`; see docs/demo.md)")


def command(engine: Engine, settings: Settings, args: Any, say: Say = print) -> int:
    """``viu demo`` after the database is resolved."""
    try:
        run_demo(
            engine,
            settings,
            months=args.months,
            end_period=args.end,
            scale=args.scale,
            say=say,
        )
    except ValueError as exc:  # a bad --end, --months or --scale
        print(f"viu demo: {exc}", file=sys.stderr)
        return 2
    return 0
