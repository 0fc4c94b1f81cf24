"""Late data into compressed TimescaleDB chunks is handled exactly like anywhere else.

Runs on the TimescaleDB lane of ``make test``: a month is stored, settled and
issued, its chunks are compressed with ``compress_chunk``, and only then do
duplicates, corrections, new samples and annotations arrive, over HTTP and
MQTT. Each must be counted, stored with its revision and reflected in the
rollups and in the issued statement's adjustment, as on plain PostgreSQL.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text

from services import db as viu_db
from services.ingest import pipeline
from services.ingest.service import IngestService
from tests.ingest.conftest import message, payload, rows
from tests.ingest.mqtt_helpers import Publisher, wait_until
from tests.settlement.helpers import ok, run, statement
from tests.settlement.test_lifecycle import CONTRACT

DEVICE = "lc-a"


def day(n: int, throughput: int = 100, uptime: float = 1440) -> dict[str, Any]:
    return {
        "ts": f"2026-02-{n:02d}T00:00:00Z",
        "interval_s": 86400,
        "uptime_min": uptime,
        "quality_min": uptime,
        "throughput": throughput,
    }


def compress_all(db: Engine) -> int:
    with db.begin() as conn:
        conn.execute(
            text(
                "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('samples') c"
            )
        )
        states = (
            conn.execute(
                text(
                    "SELECT is_compressed FROM timescaledb_information.chunks "
                    "WHERE hypertable_name = 'samples'"
                )
            )
            .scalars()
            .all()
        )
    assert states and all(states), states
    return len(states)


def rollups_match_samples(db: Engine) -> None:
    """Every 15-minute rollup equals the aggregation of its stored samples."""
    diff = rows(
        db,
        """
        SELECT * FROM (
          SELECT device_id, date_bin('15 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') b,
                 count(*) n, sum(uptime_min) up, sum(throughput) t
          FROM samples GROUP BY 1, 2) s
        FULL JOIN (SELECT device_id, bucket b, samples n, uptime_min up, throughput t
                   FROM rollup_totals) r USING (device_id, b)
        WHERE s.n IS DISTINCT FROM r.n OR s.up IS DISTINCT FROM r.up OR s.t IS DISTINCT FROM r.t
        """,
    )
    assert diff == []


@pytest.fixture
def issued(api: Any, admin: dict[str, str], db: Engine, timescale: None) -> Any:
    """February stored, settled and issued; then every chunk compressed."""
    ok(api.post("/v1/contracts", json=CONTRACT, headers=admin), 201)
    ok(
        api.post(
            f"/v1/telemetry/{DEVICE}",
            json={"samples": [day(d) for d in range(1, 29)]},
            headers=admin,
        )
    )
    run(api, admin, "LC-1", "2026-02")
    statement_ = ok(api.post("/v1/contracts/LC-1/statements/2026-02/issue", headers=admin))
    compress_all(db)
    return statement_


def test_late_duplicates_and_corrections_over_http_into_compressed_chunks(
    api: Any, admin: dict[str, str], db: Engine, issued: Any
) -> None:
    late = [day(d, uptime=0) for d in range(1, 11)] + [day(20)]
    body = ok(api.post(f"/v1/telemetry/{DEVICE}", json={"samples": late}, headers=admin))
    assert {k: body[k] for k in ("received", "stored", "duplicates", "corrections")} == {
        "received": 11,
        "stored": 0,
        "duplicates": 1,
        "corrections": 10,
    }
    revisions = rows(db, "SELECT uptime_min FROM sample_revisions ORDER BY ts")
    assert [r["uptime_min"] for r in revisions] == [Decimal(1440)] * 10
    assert rows(db, "SELECT count(*) n FROM samples WHERE uptime_min = 0") == [{"n": 10}]
    rollups_match_samples(db)

    assert run(api, admin, "LC-1", "2026-02")["results"][0]["outcome"] == "adjustment"
    again = statement(api, admin, "LC-1", "2026-02")
    kept = ("status", "net", "lines", "kpis", "inputs_digest")
    assert {k: again[k] for k in kept} == {k: issued[k] for k in kept}
    adjustment = statement(api, admin, "LC-1", "2026-02", seq=1)
    # availability 18/28 = 0.642857 < 0.9: 25.7143 points x 10.00, as on plain PostgreSQL
    assert adjustment["net"] == "-257.14"


def test_a_new_sample_and_an_annotation_in_a_compressed_chunk(
    api: Any, admin: dict[str, str], db: Engine, issued: Any
) -> None:
    extra = day(3) | {"ts": "2026-02-03T12:00:00Z", "interval_s": 3600, "uptime_min": 60}
    extra["quality_min"] = 60
    assert ok(api.post(f"/v1/telemetry/{DEVICE}", json=extra, headers=admin))["stored"] == 1
    note = {
        "device_id": DEVICE,
        "from": "2026-02-05T00:00:00Z",
        "to": "2026-02-07T00:00:00Z",
        "cause": "planned",
        "note": "liner change",
    }
    ok(api.post("/v1/annotations", json=note, headers=admin), 201)
    down = ok(api.post(f"/v1/telemetry/{DEVICE}", json=day(5, uptime=0), headers=admin))
    assert down["corrections"] == 1
    (r,) = rows(db, "SELECT sum(down_planned) p, sum(down_unplanned) u FROM rollup_totals")
    assert (r["p"], r["u"]) == (1440, 0)  # 5 Feb is annotated planned
    rollups_match_samples(db)
    assert run(api, admin, "LC-1", "2026-02")["results"][0]["outcome"] == "adjustment"


def test_the_decompression_cap_does_not_refuse_a_large_late_batch(
    api: Any, admin: dict[str, str], db: Engine, issued: Any, database_url: str
) -> None:
    """TimescaleDB caps rows decompressed per transaction (100,000 by default): late data
    touching more must still be stored, not mistaken for a refused row."""
    name = database_url.rsplit("/", 1)[1]
    with db.begin() as conn:
        conn.execute(
            text(
                f"ALTER DATABASE {name} SET timescaledb.max_tuples_decompressed_per_dml_transaction = 5"
            )
        )
    engine = viu_db.make_engine(database_url)
    try:
        late = payload(*(day(d, throughput=7) for d in range(1, 29)), batch=True)
        out = pipeline.ingest(engine, [message(DEVICE, late)])
    finally:
        engine.dispose()
        with db.begin() as conn:
            conn.execute(
                text(
                    f"ALTER DATABASE {name} RESET timescaledb.max_tuples_decompressed_per_dml_transaction"
                )
            )
    assert (out.corrections, out.dead_lettered) == (28, 0)
    rollups_match_samples(db)


def test_late_correction_over_mqtt_into_a_compressed_chunk_does_not_stall_ingest(
    api: Any, admin: dict[str, str], db: Engine, issued: Any, service: IngestService, mqtt_url: str
) -> None:
    topic = f"{service.settings.mqtt_topic_prefix}/{DEVICE}/telemetry"
    pub = Publisher(mqtt_url)
    try:
        pub.publish(topic, payload(day(1, throughput=400))).wait_for_publish(5)  # a correction
        pub.publish(topic, payload(day(2))).wait_for_publish(5)  # a duplicate
        fresh = day(1) | {"ts": "2026-11-20T00:00:00Z"}
        pub.publish(topic, payload(fresh)).wait_for_publish(5)  # new, uncompressed
    finally:
        pub.close()

    def settled() -> bool:
        (r,) = rows(db, "SELECT sum(received) r FROM ingest_counters")
        return r["r"] == 28 + 3

    wait_until(settled, 15, "the three late messages")
    (c,) = rows(
        db, "SELECT sum(stored) s, sum(duplicates) d, sum(corrections) c FROM ingest_counters"
    )
    assert (c["s"], c["d"], c["c"]) == (28 + 1, 1, 1)
    assert rows(db, "SELECT count(*) n FROM sample_revisions") == [{"n": 1}]
    rollups_match_samples(db)
    assert run(api, admin, "LC-1", "2026-02")["results"][0]["outcome"] == "adjustment"
    adjustment = statement(api, admin, "LC-1", "2026-02", seq=1)
    assert adjustment["net"] == "600.00"  # 300 t more at 2.00
