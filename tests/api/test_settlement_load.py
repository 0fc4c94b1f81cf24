"""16 concurrent settlement runs over real HTTP while MQTT ingest continues (issue 16, item 3).

``POST /v1/settlements/run`` used to hold the request's pooled connection
while ``run_period`` asked for more: with 12 or more concurrent calls every
call failed with 500 after 30 s, and under ``viu up`` the shared pool froze
MQTT ingest. Here the API gets a deliberately tiny pool (3 connections) and
its own engine, as under ``viu up``; the ingester has its own. Every run
must answer 200 (or 429 after queueing), never a 5xx, and every sample
published meanwhile must be stored promptly.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from services import db as viu_db
from services.api.app import create_app
from services.config import load_settings
from services.ingest.service import IngestService
from tests.api.live import serve
from tests.ingest.conftest import payload, sample
from tests.ingest.mqtt_helpers import Publisher, wait_until
from tests.proposals.conftest import contract, terms_of, write_rollups
from tests.settlement.helpers import ok

RUNS = 16
CONTRACTS = 10
RATE = 100  # messages/s: a fleet of ~6,000 devices reporting once a minute
PERIOD = "2026-03"


def setup_contracts(api: Any, admin: dict[str, str], db: Any) -> None:
    for i in range(CONTRACTS):
        body = contract(contract_id=f"LOAD-{i}", devices=[f"load-{i}"])
        ok(api.post("/v1/contracts", json=body, headers=admin), 201)
        write_rollups(db, terms_of(body), PERIOD, availability=0.9)
    feed = contract(contract_id="FEED-1", devices=["feed-1"])
    ok(api.post("/v1/contracts", json=feed, headers=admin), 201)


def test_sixteen_concurrent_settlement_runs_never_5xx_and_ingest_goes_on(  # type: ignore[no-untyped-def]
    settings, db, api, admin, mqtt_url
) -> None:
    setup_contracts(api, admin, db)
    small = load_settings(
        **{k: getattr(settings, k) for k in ("database_url", "mqtt_url", "data_dir")},
        mqtt_topic_prefix=f"load{uuid.uuid4().hex[:6]}",
        mqtt_client_id=f"load-{uuid.uuid4().hex[:8]}",
        db_pool_size=2,
        db_max_overflow=1,
        db_pool_timeout_s=5,
        settlement_run_concurrency=2,
        settlement_run_wait_s=120,
    )
    assert small.database_url is not None
    api_engine = viu_db.make_engine(small.database_url, small, application_name="viu-api")
    ingest_engine = viu_db.make_engine(small.database_url, small, application_name="viu-ingest")
    ingester = IngestService(small, ingest_engine, mqtt_url)
    ingester.start()
    published: dict[int, float] = {}
    seen: dict[int, float] = {}
    stop = threading.Event()
    try:
        wait_until(ingester.is_connected, 30, "the ingester to subscribe")
        with serve(create_app(small, api_engine)) as base:
            feeder = threading.Thread(target=feed, args=(mqtt_url, small, published, stop))
            watched = threading.Event()
            watcher = threading.Thread(target=watch, args=(db, seen, watched))
            watcher.start()
            feeder.start()
            time.sleep(3)  # ingest at its normal rate first: the baseline
            calm = len(published)
            codes, seconds = storm(base, admin)
            stormy = len(published)
            time.sleep(1)
            stop.set()
            feeder.join(30)
            wait_until(lambda: len(seen) >= len(published), 30, "every published sample")
            watched.set()
            watcher.join(10)
    finally:
        stop.set()
        ingester.stop()
        api_engine.dispose()
        ingest_engine.dispose()

    assert all(c in (200, 429) for c in codes), codes
    assert codes.count(200) >= RUNS // 2, codes
    before = latency([seen[i] - published[i] for i in range(calm)])
    during = latency([seen[i] - published[i] for i in range(calm, stormy)])
    print(
        f"\n{RUNS} runs: {codes.count(200)}x200 {codes.count(429)}x429 in {seconds:.1f}s; "
        f"{len(published)} samples at {RATE}/s; latency before the runs {before}, during {during}"
    )
    assert during["p95"] < 2000 and during["max"] < 5000, "ingest stalled during the runs"
    with db.connect() as conn:
        settled = conn.execute(
            text("SELECT count(*) FROM statements WHERE period = :p"), {"p": PERIOD}
        ).scalar()
    assert settled == CONTRACTS + 1


def latency(seconds: list[float]) -> dict[str, int]:
    """Median, 95th percentile and maximum in milliseconds (includes the 50 ms polling)."""
    ms = sorted(int(x * 1000) for x in seconds)
    return {"median": int(statistics.median(ms)), "p95": ms[int(len(ms) * 0.95)], "max": ms[-1]}


def storm(base: str, headers: dict[str, str]) -> tuple[list[int], float]:
    """RUNS settlement runs of every contract, released together; (status codes, seconds)."""
    start = threading.Barrier(RUNS + 1)
    codes: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=180) as client:
            start.wait()
            r = client.post("/v1/settlements/run", json={"period": PERIOD})
        with lock:
            codes.append(r.status_code)

    threads = [threading.Thread(target=run) for _ in range(RUNS)]
    for t in threads:
        t.start()
    start.wait()
    began = time.monotonic()
    for t in threads:
        t.join(240)
    return codes, time.monotonic() - began


def feed(url: str, settings: Any, published: dict[int, float], stop: threading.Event) -> None:
    """One-sample messages at RATE per second, each timed when handed to the broker."""
    pub = Publisher(url)
    topic = f"{settings.mqtt_topic_prefix}/feed-1/telemetry"
    try:
        i = 0
        t0 = time.monotonic()
        while not stop.is_set():
            published[i] = time.monotonic()
            pub.publish(topic, payload(sample(i, seq=i)))
            i += 1
            delay = t0 + i / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    finally:
        time.sleep(0.5)
        pub.close()


def watch(db: Any, seen: dict[int, float], done: threading.Event) -> None:
    """When each sample became visible in the database (polled every 50 ms)."""
    while not done.is_set():
        with db.connect() as conn:
            rows = conn.execute(text("SELECT seq FROM samples WHERE device_id = 'feed-1'"))
            now = time.monotonic()
            for (seq,) in rows:
                seen.setdefault(int(seq), now)
        time.sleep(0.05)


def test_runs_beyond_the_limit_answer_429_with_retry_after_once_their_wait_is_over(  # type: ignore[no-untyped-def]
    settings, db, api, admin
) -> None:
    setup_contracts(api, admin, db)
    impatient = load_settings(
        database_url=settings.database_url,
        settlement_run_concurrency=1,
        settlement_run_wait_s=0,
    )
    assert impatient.database_url is not None
    engine = viu_db.make_engine(impatient.database_url, impatient)
    try:
        with serve(create_app(impatient, engine)) as base:
            start = threading.Barrier(8)
            answers: list[httpx.Response] = []

            def run() -> None:
                with httpx.Client(base_url=base, headers=admin, timeout=120) as client:
                    start.wait()
                    answers.append(client.post("/v1/settlements/run", json={"period": PERIOD}))

            threads = [threading.Thread(target=run) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(180)
    finally:
        engine.dispose()
    codes = sorted(r.status_code for r in answers)
    assert codes[0] == 200 and codes[-1] == 429 and set(codes) == {200, 429}, codes
    busy = next(r for r in answers if r.status_code == 429)
    assert busy.headers["content-type"] == "application/problem+json"
    assert busy.headers["retry-after"].isdigit()
    assert "retry" in busy.json()["detail"]
